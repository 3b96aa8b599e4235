using System.Diagnostics.CodeAnalysis;
using KvmTyped.Generators;
using KvmTyped.TestSupport;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace KvmTyped.Tests.Architecture;

/// <summary>The library's layers (DESIGN.md, "Data flow"), checked on what the compiler sees: every name in the
/// library's sources is bound with a semantic model, and a reference from one layer to a type or member of a
/// higher layer fails, naming the file, the line and the reference.</summary>
public class LayerTests
{
    /// <summary>The layer order, lowest first: each layer may use those before it, and its own.</summary>
    internal static readonly string[] Order =
        ["Base", "IO", "Formats", "Translation", "Symbols", "Arch", "Types", "Btf", "Dwarf", "Open", "Linux", "Compat", "Tools"];

    /// <summary>Folders of src/KvmTyped by layer; files at the top of the folder are the base (data model, machine,
    /// exceptions). Generated views are placed by their namespace.</summary>
    private static readonly Dictionary<string, string> Folders = new(StringComparer.Ordinal)
    {
        ["IO"] = "IO", ["Formats"] = "Formats", ["Translation"] = "Translation", ["Symbols"] = "Symbols", ["Arch"] = "Arch",
        ["Arch/X86"] = "Arch", ["Arch/Arm64"] = "Arch",
        ["Types"] = "Types", ["Btf"] = "Btf", ["Dwarf"] = "Dwarf", ["Open"] = "Open", ["Linux"] = "Linux", ["Compat"] = "Compat", ["Tools"] = "Tools",
    };

    private static readonly Lazy<Library> Source = new(Library.Compile);

    /// <summary>The library compiled from its sources (with its generated views), once per test run.</summary>
    internal static Library Compiled => Source.Value;

    /// <summary>The library compiled from source, as the build compiles it.</summary>
    internal sealed class Library
    {
        public required CSharpCompilation Compilation { get; init; }

        public required string Root { get; init; }

        public static Library Compile()
        {
            var root = Path.Combine(Fixtures.RepoRoot, "src", "KvmTyped");
            var parse = new CSharpParseOptions(LanguageVersion.Preview);
            var trees = Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
                .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                            && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
                .Order(StringComparer.Ordinal)
                .Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f), parse, f))
                .ToList();
            trees.Add(CSharpSyntaxTree.ParseText(ImplicitUsings, parse, "ImplicitUsings.g.cs"));
            var compilation = CSharpCompilation.Create("KvmTyped", trees, References(),
                new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true, nullableContextOptions: NullableContextOptions.Enable));
            // The views the library's build generates (KvmTyped.csproj: the shipped schemas and Linux/Schemas, internal,
            // in KvmTyped.Linux.Kernel), made by the same generator.
            var schemas = Directory.EnumerateFiles(Path.Combine(Fixtures.RepoRoot, "schemas", "linux"), "*.h", SearchOption.AllDirectories)
                .Concat(Directory.EnumerateFiles(Path.Combine(root, "Linux", "Schemas"), "*.h"))
                .Select(f => (AdditionalText)new FileText(f)).ToList();
            CSharpGeneratorDriver.Create([new KvmTypedGenerator().AsSourceGenerator()], schemas, parse, new BuildOptions())
                .RunGeneratorsAndUpdateCompilation(compilation, out var generated, out _);
            return new Library { Compilation = (CSharpCompilation)generated, Root = root };
        }

        private sealed class FileText(string path) : AdditionalText
        {
            public override string Path => path;

            public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(File.ReadAllText(path));
        }

        /// <summary>What KvmTyped.csproj and build/KvmTyped.targets tell the generator.</summary>
        private sealed class BuildOptions : AnalyzerConfigOptionsProvider
        {
            public override AnalyzerConfigOptions GlobalOptions { get; } = new Options(new()
            {
                ["build_property.KvmTypedNamespace"] = "KvmTyped.Linux.Kernel",
                ["build_property.KvmTypedAccessibility"] = "internal",
            });

            public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => new Options([]);

            public override AnalyzerConfigOptions GetOptions(AdditionalText textFile)
            {
                var values = new Dictionary<string, string> { ["build_metadata.AdditionalFiles.KvmTypedSchema"] = "true" };
                var folder = Path.GetFileName(Path.GetDirectoryName(textFile.Path));
                if (Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(textFile.Path))) == "arch")
                    values["build_metadata.AdditionalFiles.KvmTypedArch"] = folder switch { "x86_64" => "X86_64", "i386" => "I386", "arm64" => "Arm64", _ => folder! };
                return new Options(values);
            }

            private sealed class Options(Dictionary<string, string> values) : AnalyzerConfigOptions
            {
                public override bool TryGetValue(string key, [NotNullWhen(true)] out string? value) => values.TryGetValue(key, out value);
            }
        }

        private const string ImplicitUsings = """
            global using global::System;
            global using global::System.Collections.Generic;
            global using global::System.IO;
            global using global::System.Linq;
            global using global::System.Net.Http;
            global using global::System.Threading;
            global using global::System.Threading.Tasks;
            """;

        private static IEnumerable<MetadataReference> References()
        {
            var own = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "KvmTyped.dll", "KvmTyped.Tests.dll" };
            var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
            return tpa.Where(p => !own.Contains(Path.GetFileName(p))).Select(p => MetadataReference.CreateFromFile(p));
        }
    }

    private static string LayerOfFile(string root, string path)
    {
        var relative = Path.GetRelativePath(root, path);
        var parts = relative.Split(Path.DirectorySeparatorChar);
        if (parts.Length == 1)
            return "Base";
        // An architecture's own folder (Arch/Arm64) is registered by its two-level name; other folders by their first.
        if (parts.Length > 2 && Folders.TryGetValue(parts[0] + "/" + parts[1], out var layer))
            return layer;
        return Folders.GetValueOrDefault(parts[0], "?" + parts[0]);
    }

    /// <summary>The layer a symbol from the library's own sources belongs to; null for symbols of other assemblies.</summary>
    private static string? LayerOf(ISymbol symbol, string root, Compilation? compilation = null)
    {
        var type = symbol as INamedTypeSymbol ?? symbol.ContainingType;
        while (type?.ContainingType is { } outer)
            type = outer;
        if (type is null || !SymbolEqualityComparer.Default.Equals(type.ContainingAssembly, (compilation ?? Source.Value.Compilation).Assembly))
            return null;
        var location = type.Locations.FirstOrDefault(l => l.IsInSource && File.Exists(l.SourceTree!.FilePath));
        if (location is not null)
            return LayerOfFile(root, location.SourceTree!.FilePath);
        var ns = type.ContainingNamespace.ToDisplayString();
        return ns.StartsWith("KvmTyped.Linux", StringComparison.Ordinal) ? "Linux" : "?" + ns;
    }

    /// <summary>Every reference from one layer to a higher one, as "file:line: what (layer) → what (layer)".</summary>
    internal static List<string> UpwardReferences() => CrossLayerReferences().Upward;

    /// <summary>References between layers: those going up, and how many go down (the check is not vacuous).</summary>
    internal static (List<string> Upward, int Downward) CrossLayerReferences()
    {
        var lib = Source.Value;
        var result = new List<string>();
        var downward = 0;
        foreach (var tree in lib.Compilation.SyntaxTrees)
        {
            if (!File.Exists(tree.FilePath))
                continue;
            var from = LayerOfFile(lib.Root, tree.FilePath);
            var rank = Array.IndexOf(Order, from);
            var model = lib.Compilation.GetSemanticModel(tree);
            foreach (var node in tree.GetRoot().DescendantNodes())
            {
                if (node is not (SimpleNameSyntax or ObjectCreationExpressionSyntax or ImplicitObjectCreationExpressionSyntax))
                    continue;
                var info = model.GetSymbolInfo(node);
                var symbol = info.Symbol ?? info.CandidateSymbols.FirstOrDefault();
                if (symbol is null or INamespaceSymbol)
                    continue;
                var to = LayerOf(symbol, lib.Root);
                if (to is null || to == from)
                    continue;
                if (Array.IndexOf(Order, to) < rank && !to.StartsWith('?'))
                {
                    downward++;
                }
                else
                {
                    var line = node.GetLocation().GetLineSpan().StartLinePosition.Line + 1;
                    result.Add($"{Path.GetRelativePath(Fixtures.RepoRoot, tree.FilePath)}:{line}: {from} uses {symbol.ToDisplayString()} ({to})");
                }
            }
        }
        return (result, downward);
    }

    [Fact]
    public void The_library_compiles_here_as_the_build_compiles_it()
    {
        var errors = Source.Value.Compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).Take(10).ToList();
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public void No_layer_uses_a_higher_one()
    {
        var (upward, downward) = CrossLayerReferences();
        Assert.True(downward > 1000, $"only {downward} references between layers were bound: the check would see nothing");
        Assert.True(upward.Count == 0, $"{upward.Count} references go up the layers:\n" + string.Join('\n', upward.Distinct().Take(60)));
    }

    /// <summary>The C names are a thin layer over the idiomatic API (DESIGN.md): they reach nothing internal.</summary>
    [Fact]
    public void Compat_uses_only_the_public_api()
    {
        var lib = Source.Value;
        var inner = new List<string>();
        foreach (var tree in lib.Compilation.SyntaxTrees.Where(t => File.Exists(t.FilePath) && LayerOfFile(lib.Root, t.FilePath) == "Compat"))
        {
            var model = lib.Compilation.GetSemanticModel(tree);
            foreach (var node in tree.GetRoot().DescendantNodes().OfType<SimpleNameSyntax>())
            {
                var symbol = model.GetSymbolInfo(node).Symbol;
                if (symbol is null or INamespaceSymbol or ILocalSymbol or IParameterSymbol or IRangeVariableSymbol or ILabelSymbol
                    || LayerOf(symbol, lib.Root) is null or "Compat" || IsPublic(symbol))
                    continue;
                var line = node.GetLocation().GetLineSpan().StartLinePosition.Line + 1;
                inner.Add($"{Path.GetRelativePath(Fixtures.RepoRoot, tree.FilePath)}:{line}: {symbol.ToDisplayString()} is {symbol.DeclaredAccessibility}");
            }
        }
        Assert.True(inner.Count == 0, string.Join('\n', inner.Distinct()));
    }

    private static bool IsPublic(ISymbol symbol)
    {
        for (var s = symbol; s is not null and not INamespaceSymbol; s = s.ContainingSymbol)
        {
            if (s.DeclaredAccessibility is not (Accessibility.Public or Accessibility.NotApplicable))
                return false;
        }
        return true;
    }

    [Fact]
    public void The_check_sees_an_upward_reference()
    {
        // A formats-layer file that reaches the facade must be caught: the check is only as good as its binding.
        var lib = Source.Value;
        var fake = Path.Combine(lib.Root, "Formats", "Probe.cs");
        var tree = CSharpSyntaxTree.ParseText("namespace KvmTyped.Formats; internal static class Probe { public static bool Closed(KvmTyped.Kvm k) => k.IsClosed; }",
            new CSharpParseOptions(LanguageVersion.Preview), fake);
        var model = lib.Compilation.AddSyntaxTrees(tree).GetSemanticModel(tree);
        var names = tree.GetRoot().DescendantNodes().OfType<SimpleNameSyntax>()
            .Select(n => model.GetSymbolInfo(n).Symbol).OfType<ISymbol>().Where(s => s is not INamespaceSymbol).ToList();
        Assert.Contains(names, s => s.Name == "Kvm");
        Assert.Equal("Formats", LayerOfFile(lib.Root, fake));
        Assert.Equal("Open", LayerOfFile(lib.Root, Path.Combine(lib.Root, "Open", "Kvm.cs")));
        Assert.Equal("Base", LayerOfFile(lib.Root, Path.Combine(lib.Root, "DataModel.cs")));
        Assert.True(Array.IndexOf(Order, "Open") > Array.IndexOf(Order, "Formats"));
    }
    /// <summary>Layers whose types describe a kernel's structs by hand (member lookups in a type graph): the Linux
    /// helpers read kernel structs only through generated views, so they bind to none of these.</summary>
    private static readonly string[] TypeGraphLayers = ["Btf", "Dwarf"];

    /// <summary>Members that give a struct's offsets or sizes by name from VMCOREINFO, for hand arithmetic.</summary>
    private static readonly string[] VmcoreInfoLayoutMembers = ["Offset", "Size", "Length"];

    /// <summary>Where files of the Linux layer read a kernel struct by hand: a BTF or DWARF type lookup, an OFFSET/SIZE
    /// of VMCOREINFO, or a field that keeps an offset. Also how many generated views they use (the check is not
    /// vacuous when that is large).</summary>
    internal static (List<string> HandReads, int ViewUses) LinuxHandReads(CSharpCompilation compilation, string root)
    {
        var found = new List<string>();
        var views = 0;
        foreach (var tree in compilation.SyntaxTrees.Where(t => t.FilePath.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal)
                                                             && LayerOfFile(root, t.FilePath) == "Linux"))
        {
            var model = compilation.GetSemanticModel(tree);
            string Where(SyntaxNode n) => $"{Path.GetRelativePath(Fixtures.RepoRoot, tree.FilePath)}:{n.GetLocation().GetLineSpan().StartLinePosition.Line + 1}";
            foreach (var node in tree.GetRoot().DescendantNodes())
            {
                if (node is VariableDeclaratorSyntax { Parent.Parent: FieldDeclarationSyntax field } declarator
                    && !field.Modifiers.Any(SyntaxKind.ConstKeyword)
                    && model.GetDeclaredSymbol(declarator) is IFieldSymbol { Type.SpecialType: >= SpecialType.System_SByte and <= SpecialType.System_UInt64 } f
                    && (f.Name.Contains("off", StringComparison.OrdinalIgnoreCase) || f.Name.EndsWith("Size", StringComparison.Ordinal)))
                {
                    found.Add($"{Where(node)}: field {f.Name} keeps a struct offset or size by hand");
                    continue;
                }
                if (node is not SimpleNameSyntax)
                    continue;
                var symbol = model.GetSymbolInfo(node).Symbol;
                if (symbol is null or INamespaceSymbol)
                    continue;
                var type = symbol as INamedTypeSymbol ?? symbol.ContainingType;
                if (type?.ContainingNamespace.ToDisplayString() == "KvmTyped.Linux.Kernel" || type?.ContainingNamespace.ContainingNamespace?.ToDisplayString() == "KvmTyped.Linux.Kernel")
                {
                    views++;
                    continue;
                }
                var layer = LayerOf(symbol, root, compilation);
                if (layer is not null && TypeGraphLayers.Contains(layer))
                    found.Add($"{Where(node)}: uses {symbol.ToDisplayString()} ({layer})");
                else if (type?.Name == "VmcoreInfo" && VmcoreInfoLayoutMembers.Contains(symbol.Name))
                    found.Add($"{Where(node)}: takes a layout from VMCOREINFO ({symbol.ToDisplayString()})");
            }
        }
        return (found, views);
    }

    /// <summary>The Linux helpers are written on the project's own typed views (issue: "a reader can learn the product
    /// from its own code"): no hand-kept offsets, no BTF member lookups, no VMCOREINFO OFFSET arithmetic.</summary>
    [Fact]
    public void Linux_reads_kernel_structs_only_through_views()
    {
        var lib = Source.Value;
        var (hand, views) = LinuxHandReads(lib.Compilation, lib.Root);
        Assert.True(views > 100, $"the Linux layer uses generated views only {views} times: the check would see nothing");
        Assert.True(hand.Count == 0, string.Join('\n', hand));
    }

    [Fact]
    public void The_hand_read_check_sees_each_kind()
    {
        var lib = Source.Value;
        var fake = Path.Combine(lib.Root, "Linux", "Probe.cs");
        var tree = CSharpSyntaxTree.ParseText("""
            namespace KvmTyped.Linux;
            internal sealed class Probe
            {
                private int _offPid;
                private readonly ulong _taskSize;
                public ulong? Comm(KvmTyped.Formats.VmcoreInfo info) => info.Offset("task_struct.comm") + info.Size("task_struct") + (ulong)(_offPid + (int)_taskSize);
                public object Lookup(KvmTyped.Btf.BtfTypes types) => types;
            }
            """, new CSharpParseOptions(LanguageVersion.Preview), fake);
        var (hand, _) = LinuxHandReads(lib.Compilation.AddSyntaxTrees(tree), lib.Root);
        var probe = hand.Where(h => h.Contains("Probe.cs", StringComparison.Ordinal)).ToList();
        Assert.Contains(probe, h => h.Contains("field _offPid", StringComparison.Ordinal));
        Assert.Contains(probe, h => h.Contains("field _taskSize", StringComparison.Ordinal));
        Assert.Contains(probe, h => h.Contains("VmcoreInfo.Offset", StringComparison.Ordinal));
        Assert.Contains(probe, h => h.Contains("VmcoreInfo.Size", StringComparison.Ordinal));
        Assert.Contains(probe, h => h.Contains("BtfTypes", StringComparison.Ordinal) && h.Contains("(Btf)", StringComparison.Ordinal));
    }
}
