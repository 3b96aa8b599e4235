using ELFSharp.ELF;
using ELFSharp.ELF.Sections;
using KvmTyped.Linux;

namespace KvmTyped.EndToEnd.Tests.Linux;

/// <summary>A module's code named by the dump's own module symbols exactly as its real .ko file names it, with the
/// file's sections placed where the guest loaded them: every function's first and last byte, and every global
/// function looked up by name.</summary>
internal static class ModuleKoCheck
{
    /// <summary>Checks the functions of <paramref name="koPath"/> (those in loaded sections other than .init and .exit)
    /// against <paramref name="symbolizer"/>; returns how many functions and addresses were checked.</summary>
    /// <param name="symbolizer">The dump's symbolizer (kernel and module symbols).</param>
    /// <param name="name">The module's name.</param>
    /// <param name="koPath">The module's .ko file.</param>
    /// <param name="sections">Where the guest loaded each section of the module (from its /sys/module).</param>
    public static (int Functions, int Addresses) Check(KernelSymbolizer symbolizer, string name, string koPath, IReadOnlyDictionary<string, ulong> sections)
    {
        using var elf = ELFReader.Load<ulong>(koPath);
        var symtab = (ISymbolTable)elf.GetSection(".symtab");
        var functions = symtab.Entries.Cast<SymbolEntry<ulong>>()
            .Where(s => s.Type == SymbolType.Function && s.Name.Length > 0 && s.PointedSectionIndex is > 0 and < 0xff00)
            .Where(s => sections.ContainsKey(s.PointedSection.Name) && !s.PointedSection.Name.StartsWith(".init", StringComparison.Ordinal) && !s.PointedSection.Name.StartsWith(".exit", StringComparison.Ordinal))
            .ToList();
        Assert.NotEmpty(functions);
        var byAddress = functions.ToLookup(s => sections[s.PointedSection.Name] + s.Value, s => s.Name);
        var checkedAddresses = 0;
        foreach (var s in functions)
        {
            var start = sections[s.PointedSection.Name] + s.Value;
            foreach (var address in new[] { start, start + Math.Max(s.Size, 1) - 1 })
            {
                var named = symbolizer.Symbolize(address);
                Assert.Equal(name, named.Module);
                Assert.Contains(named.Name, byAddress[named.SymbolAddress]);
                Assert.Equal(start, named.SymbolAddress);
                checkedAddresses++;
            }
            if (s.Binding == SymbolBinding.Global)
            {
                Assert.True(symbolizer.TryLookup(s.Name, out var found, out var module), $"{s.Name} is not found");
                Assert.Equal((name, start), (module, found.Address));
            }
        }
        return (functions.Count, checkedAddresses);
    }
}
