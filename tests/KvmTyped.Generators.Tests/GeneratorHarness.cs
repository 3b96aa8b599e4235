using System.Collections.Immutable;
using System.Reflection;
using KvmTyped.Types;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace KvmTyped.Generators.Tests;

internal sealed class InMemoryAdditionalText(string path, string text) : AdditionalText
{
    private readonly SourceText _text = SourceText.From(text);

    public override string Path => path;

    public override SourceText GetText(CancellationToken cancellationToken = default) => _text;
}

/// <summary>What build/KvmTyped.targets makes visible to the compiler: the namespace property (and any other
/// properties given), the KvmTypedSchema metadata on every .h AdditionalFile whose name does not start with
/// "not-a-schema", and the KvmTypedKernelDigest metadata on every .kvmtk file (a kernel digest).</summary>
internal sealed class TestOptionsProvider(string ns, IReadOnlyDictionary<string, string>? properties = null) : AnalyzerConfigOptionsProvider
{
    private readonly Options _global = new(new Dictionary<string, string>(properties?.Select(p => KeyValuePair.Create("build_property." + p.Key, p.Value)) ?? [])
    {
        ["build_property.KvmTypedNamespace"] = ns,
    });
    private readonly Options _digest = new(new Dictionary<string, string> { ["build_metadata.AdditionalFiles.KvmTypedKernelDigest"] = "true" });
    private readonly Options _schema = new(new Dictionary<string, string> { ["build_metadata.AdditionalFiles.KvmTypedSchema"] = "true" });
    private readonly Options _none = new(new Dictionary<string, string>());

    public override AnalyzerConfigOptions GlobalOptions => _global;

    public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => _none;

    public override AnalyzerConfigOptions GetOptions(AdditionalText textFile) =>
        textFile.Path.EndsWith(".kvmtk", StringComparison.Ordinal) ? _digest
        : Path.GetFileName(textFile.Path).StartsWith("not-a-schema", StringComparison.Ordinal) ? _none
        : Repo.ArchOf(textFile.Path) is { } arch ? new Options(new Dictionary<string, string>
        {
            ["build_metadata.AdditionalFiles.KvmTypedSchema"] = "true",
            ["build_metadata.AdditionalFiles.KvmTypedArch"] = arch,
        })
        : _schema;

    private sealed class Options(Dictionary<string, string> values) : AnalyzerConfigOptions
    {
        public override bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value) => values.TryGetValue(key, out value);
    }
}

/// <summary>Runs the generator in memory, as the compiler would, and compiles and loads the result.</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Preview, DocumentationMode.Diagnose);

    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    {
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var list = paths.Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "netstandard.dll" or "mscorlib.dll")
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToList();
        list.Add(MetadataReference.CreateFromFile(typeof(IKernelMemory).Assembly.Location));
        return list.ToImmutableArray();
    });

    public static CSharpCompilation Compilation(string csharp = "") =>
        CSharpCompilation.Create("Generated" + Guid.NewGuid().ToString("N"),
            csharp.Length > 0 ? new[] { CSharpSyntaxTree.ParseText(csharp, ParseOptions, path: "Declarations.cs") } : Array.Empty<SyntaxTree>(),
            References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, warningLevel: 9999));

    public static GeneratorDriver Driver(IEnumerable<AdditionalText> schemas, string ns = "Test.Kernel", IReadOnlyDictionary<string, string>? properties = null) =>
        CSharpGeneratorDriver.Create(
            new[] { new KvmTypedGenerator().AsSourceGenerator() },
            schemas,
            ParseOptions,
            new TestOptionsProvider(ns, properties),
            new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static IEnumerable<AdditionalText> Schemas(params (string Path, string Text)[] files) =>
        files.Select(f => (AdditionalText)new InMemoryAdditionalText(f.Path, f.Text));

    public static IEnumerable<AdditionalText> ShippedSchemas() =>
        Repo.AllShippedSchemaFiles().Select(f => (AdditionalText)new InMemoryAdditionalText(f, File.ReadAllText(f)));

    /// <summary>Runs the generator and compiles; returns the generator result and the compiled assembly
    /// (null when it did not compile). Generator diagnostics come back in the result.</summary>
    public static (GeneratorDriverRunResult Result, Compilation Output) Run(IEnumerable<AdditionalText> schemas, string csharp = "", string ns = "Test.Kernel",
        IReadOnlyDictionary<string, string>? properties = null)
    {
        var driver = Driver(schemas, ns, properties).RunGeneratorsAndUpdateCompilation(Compilation(csharp), out var output, out _);
        return (driver.GetRunResult(), output);
    }

    public static Assembly CompileAndLoad(IEnumerable<AdditionalText> schemas, string csharp, string ns = "Test.Kernel")
    {
        var (result, output) = Run(schemas, csharp, ns);
        Assert.Empty(result.Diagnostics);
        using var stream = new MemoryStream();
        var emit = output.Emit(stream);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning)));
        // Generated code must compile without a warning even with XML documentation checked (CS1591) and every
        // warning wave on; the test's own declarations are exempt from the documentation rule.
        Assert.DoesNotContain(emit.Diagnostics, d => d.Severity >= DiagnosticSeverity.Warning && !(d.Id == "CS1591" && d.Location.SourceTree?.FilePath == "Declarations.cs"));
        return Assembly.Load(stream.ToArray());
    }
}

/// <summary>Kernel memory backed by a byte array at a base address, in a chosen data model; optionally with a
/// table of relocated struct layouts.</summary>
public sealed class ByteMemory(DataModel model, ulong baseAddress, byte[] bytes, IKernelTypeOffsets? offsets = null) : IKernelMemory, IKernelTypeOffsets
{
    public DataModel DataModel => model;

    public byte[] Bytes => bytes;

    public bool TryReadVirtual(ulong address, Span<byte> destination, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure)
    {
        if (address < baseAddress || address - baseAddress + (ulong)destination.Length > (ulong)bytes.Length)
        {
            failure = $"0x{address:x} is not mapped";
            return false;
        }
        bytes.AsSpan((int)(address - baseAddress), destination.Length).CopyTo(destination);
        failure = null;
        return true;
    }

    public KernelRelocation Relocate(KernelRelocationRequest request) =>
        (offsets ?? throw new KvmException("no type table")).Relocate(request);

    public void Write(ulong address, ulong value, int size)
    {
        for (var i = 0; i < size; i++) bytes[(int)(address - baseAddress) + i] = (byte)(value >> (8 * i));
    }
}
