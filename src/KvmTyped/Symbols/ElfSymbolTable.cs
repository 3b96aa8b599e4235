using KvmTyped.Formats.Elf;
using KvmTyped.IO;
using static KvmTyped.Formats.Elf.ElfConstants;

namespace KvmTyped.Symbols;

/// <summary>A namelist from an unstripped ELF kernel (vmlinux): its .symtab and linked string table.
/// Only the headers are read at open; the symbols are indexed on first lookup, through the memory map.</summary>
internal sealed class ElfSymbolTable : ISymbolTable
{
    /// <summary>Upper bound on symbols accepted (a vmlinux has ~150k; allmodconfig well under 1M).</summary>
    public const int MaxSymbols = 16 << 20;

    /// <summary>Longest symbol name accepted (the kernel's KSYM_NAME_LEN is 512).</summary>
    public const int MaxNameLength = 4096;

    private readonly ElfImage _image;
    private readonly ElfSection _symtab;
    private readonly ElfSection _strtab;
    private readonly Lazy<SymbolIndex> _index;

    internal ElfSymbolTable(ElfImage image)
    {
        _image = image;
        var path = image.File.Path;
        var idx = -1;
        for (var i = 0; i < image.Sections.Count; i++)
        {
            if (image.Sections[i].Type == ShtSymtab)
            {
                idx = i;
                break;
            }
        }
        if (idx < 0)
            throw new KvmOpenException($"{path}: no symbol table (.symtab): the kernel is stripped");
        _symtab = image.Sections[idx];
        var entsize = image.Is64 ? 24 : 16;
        if (_symtab.EntrySize != 0 && _symtab.EntrySize != entsize)
            throw new KvmFormatException(path, null, $".symtab entry size {_symtab.EntrySize} is not {entsize}");
        if (!image.File.Contains(_symtab.Offset, _symtab.Size))
            throw new KvmFormatException(path, _symtab.Offset, $".symtab ({_symtab.Size} bytes) extends past the end of the file (size {image.File.Length})");
        if (_symtab.Size / entsize > MaxSymbols)
            throw new KvmFormatException(path, _symtab.Offset, $".symtab holds {_symtab.Size / entsize} symbols, more than {MaxSymbols}");
        if (_symtab.Link == 0 || _symtab.Link >= image.Sections.Count)
            throw new KvmFormatException(path, null, $".symtab links to string table section {_symtab.Link}, which does not exist");
        _strtab = image.Sections[(int)_symtab.Link];
        if (_strtab.Type != ShtStrtab || !image.File.Contains(_strtab.Offset, _strtab.Size))
            throw new KvmFormatException(path, _strtab.Offset, $"string table of .symtab (section {_symtab.Link}) is not a string table inside the file");
        if (_strtab.Size > int.MaxValue)
            throw new KvmFormatException(path, _strtab.Offset, $"string table of .symtab is {_strtab.Size} bytes, more than 2 GiB");
        Machine = image.Machine switch
        {
            Em386 => KernelMachine.X86,
            EmX86_64 => KernelMachine.X86_64,
            EmAarch64 => KernelMachine.Arm64,
            _ => KernelMachine.Unknown,
        };
        DataModel = Machine.DataModel() ?? (image.Is64 ? KvmTyped.DataModel.LP64 : KvmTyped.DataModel.ILP32);
        _index = new Lazy<SymbolIndex>(Build, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <inheritdoc />
    public string Source => _image.File.Path;

    /// <inheritdoc />
    public string Kind => "ELF";

    /// <inheritdoc />
    public DataModel? DataModel { get; }

    /// <inheritdoc />
    public KernelMachine Machine { get; }

    /// <inheritdoc />
    public int Count => _index.Value.Count;

    internal ElfImage Image => _image;

    private SymbolIndex Build()
    {
        var file = _image.File;
        var is64 = _image.Is64;
        var entsize = is64 ? 24 : 16;
        var count = (int)(_symtab.Size / entsize);
        var list = new List<KernelSymbol>(count);
        var global = new List<bool>(count);
        var strings = file.Unchecked(_strtab.Offset, (int)_strtab.Size);
        var sections = _image.Sections;
        for (var i = 1; i < count; i++)
        {
            var off = _symtab.Offset + (long)i * entsize;
            var r = new FieldReader(file.Unchecked(off, entsize), _image.BigEndian);
            uint nameOff;
            ulong value;
            byte info;
            ushort shndx;
            if (is64)
            {
                nameOff = r.U32(0);
                info = file.Unchecked(off + 4, 1)[0];
                shndx = r.U16(6);
                value = r.U64(8);
            }
            else
            {
                nameOff = r.U32(0);
                value = r.U32(4);
                info = file.Unchecked(off + 12, 1)[0];
                shndx = r.U16(14);
            }
            var stType = (byte)(info & 0xf);
            var bind = (byte)(info >> 4);
            if (nameOff == 0 || stType is SttSection or SttFile || shndx == ShnUndef)
                continue;
            if (nameOff >= strings.Length)
                throw new KvmFormatException(file.Path, off, $"symbol {i}: name offset {nameOff} is outside the string table ({strings.Length} bytes)");
            var tail = strings[(int)nameOff..];
            var nul = tail[..Math.Min(tail.Length, MaxNameLength + 1)].IndexOf((byte)0);
            if (nul < 0)
                throw new KvmFormatException(file.Path, off, tail.Length > MaxNameLength
                    ? $"symbol {i}: name at string offset {nameOff} is longer than {MaxNameLength} bytes"
                    : $"symbol {i}: name at string offset {nameOff} is not NUL-terminated inside the string table");
            var letter = TypeLetter(shndx, bind, sections);
            list.Add(new KernelSymbol(System.Text.Encoding.UTF8.GetString(tail[..nul]), value, letter));
            global.Add(bind != StbLocal);
        }
        return new SymbolIndex(list, i => global[i]);
    }

    private static char TypeLetter(ushort shndx, byte bind, IReadOnlyList<ElfSection> sections)
    {
        char c;
        if (shndx == ShnAbs)
            c = 'A';
        else if (shndx == ShnCommon)
            c = 'C';
        else if (shndx < sections.Count)
        {
            var s = sections[shndx];
            c = (s.Flags & ShfExecinstr) != 0 ? 'T'
                : s.Type == ShtNobits ? 'B'
                : (s.Flags & ShfWrite) != 0 ? 'D'
                : 'R';
        }
        else
            c = '?';
        if (bind == StbWeak && c != '?')
            return c == 'T' ? 'W' : 'V';
        return bind == StbLocal ? char.ToLowerInvariant(c) : c;
    }

    /// <summary>The kernel's own linux_banner text as the image file holds it, or null where the file lacks it.</summary>
    public string? ReadBanner()
    {
        if (!TryLookup("linux_banner", out var sym))
            return null;
        foreach (var sec in _image.Sections)
        {
            if (sec.Type is ShtNobits or 0 || (sec.Flags & ShfAlloc) == 0 || sym.Address < sec.Address || sym.Address - sec.Address >= (ulong)sec.Size)
                continue;
            var off = sec.Offset + (long)(sym.Address - sec.Address);
            var max = (int)Math.Min(1024, sec.Offset + sec.Size - off);
            if (!_image.File.Contains(off, max))
                return null;
            var bytes = _image.File.Unchecked(off, max);
            var nul = bytes.IndexOf((byte)0);
            return nul < 0 ? null : System.Text.Encoding.UTF8.GetString(bytes[..nul]);
        }
        return null;
    }

    /// <inheritdoc />
    public bool TryLookup(string name, out KernelSymbol symbol) => _index.Value.TryLookup(name, out symbol);

    /// <inheritdoc />
    public bool TryFindNearest(ulong address, out KernelSymbol symbol) => _index.Value.TryFindNearest(address, out symbol);

    /// <inheritdoc />
    public bool TryFindNext(ulong address, out KernelSymbol symbol) => _index.Value.TryFindNext(address, out symbol);

    /// <inheritdoc />
    public void Dispose() => _image.File.Dispose();
}
