namespace KvmTyped.Symbols;

/// <summary>The running kernel's symbols, as /proc/kallsyms lists them, answered without reading all of
/// /proc/kallsyms where the kernel's memory can say: the kernel image's own symbols come from its kallsyms tables
/// (<see cref="KernelKallsyms"/>, read through /proc/kcore in a few large reads), and /proc/kallsyms itself is read
/// (once, in large reads) only when a question can concern a loaded module: a name the image does not have, or an
/// address above its last symbol, while the kernel's module list is not empty.</summary>
/// <remarks>Both sources are the same table: /proc/kallsyms prints the image's symbols from exactly these kallsyms
/// tables, then each module's. What /proc/kallsyms adds besides modules (BPF programs, ftrace trampolines) is not
/// looked for. Addresses are running addresses, as /proc/kallsyms shows them.</remarks>
internal sealed class LiveKallsymsTable : ISymbolTable
{
    private readonly KernelKallsyms _kernel;
    private readonly Lazy<bool> _modulesLoaded;
    private readonly Lazy<TextSymbolTable> _file;

    /// <summary>Creates the table.</summary>
    /// <param name="path">/proc/kallsyms (or the file standing in for it).</param>
    /// <param name="kernel">The kernel image's symbols, read from its memory.</param>
    /// <param name="model">The kernel's data model.</param>
    /// <param name="modulesLoaded">Whether any module is loaded (asked at most once, when first needed).</param>
    public LiveKallsymsTable(string path, KernelKallsyms kernel, DataModel model, Func<bool> modulesLoaded)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        Source = path;
        DataModel = model;
        _kernel = kernel;
        _modulesLoaded = new Lazy<bool>(modulesLoaded, LazyThreadSafetyMode.ExecutionAndPublication);
        _file = new Lazy<TextSymbolTable>(() => TextSymbolTable.OpenKallsyms(path), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <inheritdoc />
    public string Source { get; }

    /// <summary>"kallsyms": the running kernel's symbols, at running addresses.</summary>
    public string Kind => "kallsyms";

    /// <inheritdoc />
    public DataModel? DataModel { get; }

    /// <inheritdoc />
    public KernelMachine Machine => KernelMachine.Unknown;

    /// <summary>The image's symbols, plus the modules' once /proc/kallsyms has been read.</summary>
    public int Count => _file.IsValueCreated ? _file.Value.Count : _kernel.Count;

    /// <summary>Whether /proc/kallsyms itself has been read.</summary>
    internal bool HasReadFile => _file.IsValueCreated;

    /// <inheritdoc />
    public bool TryLookup(string name, out KernelSymbol symbol) =>
        _kernel.TryLookup(name, out symbol) || (_modulesLoaded.Value && _file.Value.TryLookup(name, out symbol));

    /// <inheritdoc />
    public bool TryFindNearest(ulong address, out KernelSymbol symbol) =>
        address > _kernel.LastAddress && _modulesLoaded.Value ? _file.Value.TryFindNearest(address, out symbol) : _kernel.TryFindNearest(address, out symbol);

    /// <summary>The image's next symbol; above the image's last, a module's (from /proc/kallsyms) while modules are loaded.</summary>
    public bool TryFindNext(ulong address, out KernelSymbol symbol) =>
        _kernel.TryFindNext(address, out symbol) || (_modulesLoaded.Value && _file.Value.TryFindNext(address, out symbol));

    /// <inheritdoc />
    public void Dispose()
    {
        if (_file.IsValueCreated)
            _file.Value.Dispose();
    }
}
