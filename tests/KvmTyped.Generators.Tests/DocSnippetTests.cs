using System.Collections.Immutable;
using System.Text.RegularExpressions;
using KvmTyped.Types;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace KvmTyped.Generators.Tests;

/// <summary>Every ```csharp block of README.md, docs/ and schemas/README.md compiles, as a tool project made with
/// <c>dotnet new console -n MyTool</c> and the KvmTyped package would compile it: the generator runs on the shipped
/// schemas into MyTool.Kernel, with the implicit usings of a console project. The rule for fragments: a block without
/// a single <c>using</c> directive gets <c>using KvmTyped; using KvmTyped.Types; using MyTool.Kernel;</c> in front; a
/// block with one is a whole file and compiles as written. A block with top-level statements is a program, any other
/// a library. The <c>#:</c> directives of a single-file program are the SDK's: removed, and
/// <c>#:property KvmTypedNamespace=…</c> honoured.</summary>
public sealed partial class DocSnippetTests
{
    private const string FragmentUsings = "using KvmTyped;\nusing KvmTyped.Types;\nusing MyTool.Kernel;\n";

    /// <summary>What &lt;ImplicitUsings&gt;enable&lt;/ImplicitUsings&gt; gives a console project.</summary>
    private const string ImplicitUsings = "global using System;\nglobal using System.Collections.Generic;\nglobal using System.IO;\nglobal using System.Linq;\n"
        + "global using System.Net.Http;\nglobal using System.Threading;\nglobal using System.Threading.Tasks;\n";

    [GeneratedRegex(@"^```csharp[^\n]*\n(.*?)^```[ \t]*$", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    public static TheoryData<string, int> Snippets()
    {
        var files = new[] { Path.Combine(Repo.Root, "README.md"), Path.Combine(Repo.Root, "schemas", "README.md") }
            .Concat(Directory.GetFiles(Path.Combine(Repo.Root, "docs"), "*.md", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
        var data = new TheoryData<string, int>();
        foreach (var file in files)
        {
            var text = File.ReadAllText(file).Replace("\r\n", "\n", StringComparison.Ordinal);
            foreach (Match m in CSharpBlock().Matches(text))
                data.Add(Path.GetRelativePath(Repo.Root, file), 1 + text.AsSpan(0, m.Index).Count('\n'));
        }
        return data;
    }

    [Fact]
    public void TheDocumentsHaveSnippets() => Assert.True(Snippets().Count >= 6, $"found {Snippets().Count} C# blocks");

    [Theory]
    [MemberData(nameof(Snippets))]
    public void SnippetCompiles(string file, int line)
    {
        var text = File.ReadAllText(Path.Combine(Repo.Root, file)).Replace("\r\n", "\n", StringComparison.Ordinal);
        var block = CSharpBlock().Matches(text).Single(m => 1 + text.AsSpan(0, m.Index).Count('\n') == line).Groups[1].Value;
        var ns = Regex.Match(block, @"^#:property\s+KvmTypedNamespace=(\S+)", RegexOptions.Multiline) is { Success: true } p ? p.Groups[1].Value : "MyTool.Kernel";
        block = Regex.Replace(block, @"^#:.*$", string.Empty, RegexOptions.Multiline);
        var source = Regex.IsMatch(block, @"^\s*using\s", RegexOptions.Multiline) ? block : FragmentUsings + block;
        var path = $"{file}:{line}";
        var tree = CSharpSyntaxTree.ParseText(source, GeneratorHarness.ParseOptions.WithDocumentationMode(DocumentationMode.None), path: path);
        var program = tree.GetRoot().DescendantNodes().OfType<GlobalStatementSyntax>().Any();
        var compilation = CSharpCompilation.Create("MyTool",
            [tree, CSharpSyntaxTree.ParseText(ImplicitUsings, GeneratorHarness.ParseOptions, path: "GlobalUsings.g.cs")],
            References.Value,
            new CSharpCompilationOptions(program ? OutputKind.ConsoleApplication : OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        var driver = GeneratorHarness.Driver(GeneratorHarness.ShippedSchemas(), ns)
            .RunGeneratorsAndUpdateCompilation(compilation, out var output, out _);
        Assert.Empty(driver.GetRunResult().Diagnostics);
        var errors = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.Count == 0, path + " does not compile:\n" + string.Join("\n", errors));
    }

    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    {
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var list = paths.Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "netstandard.dll" or "mscorlib.dll")
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToList();
        list.Add(MetadataReference.CreateFromFile(typeof(IKernelMemory).Assembly.Location));
        return list.ToImmutableArray();
    });
}
