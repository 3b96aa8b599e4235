using System.Text.RegularExpressions;
using KvmTyped.TestSupport;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace KvmTyped.Tests.Architecture;

/// <summary>Dead code, found on what the compiler sees: every member of the library is used by the library itself (its
/// sources bound with a semantic model), or named by the code and documents around it — the CLI, the generator's
/// emitter (what generated views call), a test, the docs (by name: the tests bind their own views, and public members
/// are for users).</summary>
public partial class UnusedMemberTests
{
    /// <summary>Every member of the library's own sources that a name in <paramref name="trees"/> binds to.</summary>
    private static HashSet<ISymbol> Referenced(Compilation compilation, IEnumerable<SyntaxTree> trees)
    {
        var used = new HashSet<ISymbol>(SymbolEqualityComparer.Default);
        foreach (var tree in trees)
        {
            var model = compilation.GetSemanticModel(tree);
            foreach (var node in tree.GetRoot().DescendantNodes())
            {
                if (node is not (SimpleNameSyntax or ObjectCreationExpressionSyntax or ImplicitObjectCreationExpressionSyntax
                    or ElementAccessExpressionSyntax or ForEachStatementSyntax or BinaryExpressionSyntax or AssignmentExpressionSyntax))
                    continue;
                var info = model.GetSymbolInfo(node);
                foreach (var s in info.Symbol is { } one ? [one] : info.CandidateSymbols)
                {
                    used.Add(s.OriginalDefinition);
                    if (s is IMethodSymbol { ReducedFrom: { } reduced })
                        used.Add(reduced.OriginalDefinition);
                }
                if (node is ForEachStatementSyntax fe && model.GetForEachStatementInfo(fe) is { } each)
                {
                    foreach (var m in new ISymbol?[] { each.GetEnumeratorMethod, each.MoveNextMethod, each.CurrentProperty })
                        if (m is not null)
                            used.Add(m.OriginalDefinition);
                }
            }
        }
        return used;
    }

    /// <summary>Members that are used without being named: constructors, operators, overrides and interface
    /// implementations, compiler-made record members, enum values, and what the generated views call.</summary>
    private static bool UsedImplicitly(ISymbol m)
    {
        if (m.IsImplicitlyDeclared || m.IsOverride || m is IMethodSymbol { MethodKind: not MethodKind.Ordinary } or IPropertySymbol { IsIndexer: true })
            return true;
        if (m.ContainingType is { TypeKind: TypeKind.Enum })
            return true;
        if (m.ContainingType is { } t && t.AllInterfaces.SelectMany(i => i.GetMembers()).Any(i => SymbolEqualityComparer.Default.Equals(t.FindImplementationForInterfaceMember(i), m)))
            return true;
        if (m.ContainingType is { IsRecord: true } && m.Name is "EqualityContract" or "Deconstruct" or "PrintMembers" or "ToString" or "GetHashCode" or "Equals")
            return true;
        return false;
    }

    private static IEnumerable<ISymbol> OwnMembers(LayerTests.Library lib) =>
        lib.Compilation.Assembly.GlobalNamespace.GetNamespaceMembers().SelectMany(AllTypes)
            .Where(t => t.Locations.Any(l => l.IsInSource && File.Exists(l.SourceTree!.FilePath)))
            .SelectMany(t => t.GetMembers().Prepend(t))
            .Where(m => m is INamedTypeSymbol or IMethodSymbol { MethodKind: MethodKind.Ordinary } or IPropertySymbol or IFieldSymbol or IEventSymbol)
            .Where(m => !UsedImplicitly(m));

    private static IEnumerable<INamedTypeSymbol> AllTypes(INamespaceSymbol ns) =>
        ns.GetTypeMembers().SelectMany(Nested).Concat(ns.GetNamespaceMembers().SelectMany(AllTypes));

    private static IEnumerable<INamedTypeSymbol> Nested(INamedTypeSymbol t) => t.GetTypeMembers().SelectMany(Nested).Prepend(t);

    private static bool IsPublic(ISymbol s)
    {
        for (var x = s; x is not null and not INamespaceSymbol; x = x.ContainingSymbol)
        {
            if (x.DeclaredAccessibility is not (Accessibility.Public or Accessibility.Protected or Accessibility.ProtectedOrInternal))
                return false;
        }
        return true;
    }

    private static string Where(ISymbol s)
    {
        var l = s.Locations.First(l => l.IsInSource);
        return $"{Path.GetRelativePath(Fixtures.RepoRoot, l.SourceTree!.FilePath)}:{l.GetLineSpan().StartLinePosition.Line + 1}: {s.ToDisplayString()}";
    }

    [GeneratedRegex(@"\b[A-Za-z_][A-Za-z0-9_]*\b")]
    private static partial Regex Word();

    /// <summary>Every identifier in the sources and documents under <paramref name="dirs"/> (and README.md).</summary>
    private static HashSet<string> Words(params string[] dirs)
    {
        var root = Fixtures.RepoRoot;
        var words = new HashSet<string>(StringComparer.Ordinal);
        var files = dirs.SelectMany(d => Directory.EnumerateFiles(Path.Combine(root, d), "*.*", SearchOption.AllDirectories))
            .Where(f => f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".md", StringComparison.Ordinal))
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
            .Append(Path.Combine(root, "README.md"));
        foreach (var file in files)
            foreach (Match w in Word().Matches(File.ReadAllText(file)))
                words.Add(w.Value);
        return words;
    }

    /// <summary>A member named in <paramref name="words"/> (an attribute also by its short name; a type also through a
    /// member of it the library uses).</summary>
    private static bool Named(ISymbol m, HashSet<string> words, HashSet<ISymbol> used) =>
        words.Contains(m.Name)
        || (m is INamedTypeSymbol t && (t.Name.EndsWith("Attribute", StringComparison.Ordinal) && words.Contains(t.Name[..^"Attribute".Length])
            || t.GetMembers().Any(x => used.Contains(x.OriginalDefinition))));

    [Fact]
    public void Every_internal_member_is_used_by_the_library_or_its_tests()
    {
        var lib = LayerTests.Compiled;
        var used = Referenced(lib.Compilation, lib.Compilation.SyntaxTrees);
        var words = Words("tests");
        var unused = OwnMembers(lib).Where(m => !IsPublic(m) && !used.Contains(m.OriginalDefinition) && !Named(m, words, used))
            .Select(Where).Order(StringComparer.Ordinal).ToList();
        Assert.True(unused.Count == 0, $"{unused.Count} internal members nothing uses:\n" + string.Join('\n', unused));
    }

    [Fact]
    public void Every_public_member_is_used_or_shown_somewhere()
    {
        var lib = LayerTests.Compiled;
        var used = Referenced(lib.Compilation, lib.Compilation.SyntaxTrees);
        // The generator's emitter names what generated views call (KernelReader.ReadSingle …) in users' assemblies.
        var words = Words("src/KvmTyped.Cli", "generators/KvmTyped.Generators", "tests", "docs", "schemas");
        var unused = OwnMembers(lib).Where(m => IsPublic(m) && !used.Contains(m.OriginalDefinition) && !Named(m, words, used))
            .Select(Where).Order(StringComparer.Ordinal).ToList();
        Assert.True(unused.Count == 0, $"{unused.Count} public members nothing names:\n" + string.Join('\n', unused));
    }
}
