using KvmTyped.Symbols;

namespace KvmTyped.Linux;

/// <summary>Names kernel and module addresses as the kernel does in an oops: <c>func+0x1c/0x40</c>, with
/// <c>[module]</c> for module code, from the namelist and each loaded module's own in-memory symbols. An address
/// outside the kernel image's sections and every module's memory (a heap pointer, a user address) is reported as
/// such, never as a huge offset from some symbol.</summary>
/// <remarks>The modules are read only when an address outside the kernel image is asked about. When they cannot be
/// read (the kernel's types lack struct module), addresses outside the image say why.</remarks>
public sealed class KernelSymbolizer
{
    private readonly Symbolizer _kernel;
    private readonly Lazy<Symbolizer> _withModules;

    /// <summary>Symbolization for an opened image, its modules read through <paramref name="modules"/>.</summary>
    public KernelSymbolizer(Kvm kvm, KernelModules modules)
        : this((kvm ?? throw new ArgumentNullException(nameof(kvm))).KernelSymbols, modules)
    {
    }

    internal KernelSymbolizer(KernelSymbols symbols, KernelModules? modules)
    {
        _kernel = new Symbolizer(symbols, []);
        _withModules = new(() =>
        {
            if (modules is null)
                return new Symbolizer(symbols, [], "no module list");
            try
            {
                return new Symbolizer(symbols, modules.SymbolTables());
            }
            catch (KvmException e)
            {
                return new Symbolizer(symbols, [], e.Message);
            }
        }, LazyThreadSafetyMode.ExecutionAndPublication);
        Modules = modules;
    }

    /// <summary>Symbolization for <paramref name="kvm"/>.</summary>
    public static KernelSymbolizer For(Kvm kvm) => new(kvm, KernelModules.For(kvm));

    /// <summary>The modules whose symbols are used, or null.</summary>
    public KernelModules? Modules { get; }

    /// <summary>Why the modules' symbols are not known (once looked for), or null.</summary>
    public string? ModulesUnknown => _withModules.IsValueCreated ? _withModules.Value.ModulesUnknown : null;

    /// <summary>Names an address (<c>%pS</c>): the symbol at or below it.</summary>
    public SymbolizedAddress Symbolize(ulong address) => Lookup(address, returnAddress: false);

    /// <summary>Names a return address (<c>%pB</c>): looked up at address − 1, so a call that ends a function names its
    /// caller (with an offset equal to the caller's length), not the function after it.</summary>
    public SymbolizedAddress SymbolizeReturnAddress(ulong address) => Lookup(address, returnAddress: true);

    /// <summary>A symbol by name: the namelist's, else the first module's that has it.</summary>
    /// <param name="name">The symbol.</param>
    /// <param name="symbol">Its running address and type letter.</param>
    /// <param name="module">The module it belongs to, or null for the kernel image.</param>
    public bool TryLookup(string name, out KernelSymbol symbol, out string? module)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_kernel.TryLookup(name, out symbol, out module))
            return true;
        return _withModules.Value.TryLookup(name, out symbol, out module);
    }

    /// <summary>Whether an address is kernel or module code.</summary>
    internal bool IsText(ulong address) => _kernel.IsText(address) || (!InKernelImage(address) && _withModules.Value.IsText(address));

    /// <summary>The namelist's symbolizer, without modules.</summary>
    internal Symbolizer Kernel => _kernel;

    private bool InKernelImage(ulong address) => _kernel.KernelRegions.Any(r => r.Contains(address));

    private SymbolizedAddress Lookup(ulong address, bool returnAddress)
    {
        var at = returnAddress && address > 0 ? address - 1 : address;
        return _kernel.KernelRegions.Count == 0 || InKernelImage(at)
            ? _kernel.Symbolize(address, returnAddress)
            : _withModules.Value.Symbolize(address, returnAddress);
    }
}
