using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;

namespace KvmTyped.Symbols;

/// <summary>The kernel's own symbol table (kallsyms) read from its memory and kept in the kernel's compact form: the
/// compressed names, their token table, one address per symbol, and a 32-bit hash per name. A name is expanded only
/// when asked for, so a table of ~100,000 symbols costs a few MiB and no string per symbol — what the running kernel's
/// open needs, where /proc/kallsyms gives at most a page per read (seq_file) and reading all of it would cost a
/// thousand system calls.</summary>
/// <remarks>The format and its checks are those of <see cref="KallsymsImage"/> (same caps, same rules for the length
/// bytes and the two offset encodings); this reader differs only in what it keeps. Lookups by name scan the hashes
/// (a global symbol wins over locals of the same name, as in <see cref="SymbolIndex"/>) and are remembered; lookups by
/// address search the addresses, which the kernel keeps in ascending order. Thread-safe.</remarks>
internal sealed class KernelKallsyms
{
    private readonly byte[] _names;
    private readonly int[] _offsets;
    private readonly int[] _hashes;
    private readonly ulong[] _addresses;
    private readonly byte[] _tokenBytes;
    private readonly int[] _tokenStart;
    private readonly int[] _tokenLength;
    private readonly bool _twoByteLengths;
    private readonly ConcurrentDictionary<string, int> _found = new(StringComparer.Ordinal);

    private KernelKallsyms(byte[] names, int[] offsets, int[] hashes, ulong[] addresses, byte[] tokenBytes, int[] tokenStart,
        int[] tokenLength, bool twoByteLengths, KallsymsAddressMode mode)
    {
        _names = names;
        _offsets = offsets;
        _hashes = hashes;
        _addresses = addresses;
        _tokenBytes = tokenBytes;
        _tokenStart = tokenStart;
        _tokenLength = tokenLength;
        _twoByteLengths = twoByteLengths;
        Mode = mode;
    }

    /// <summary>How many symbols the table has.</summary>
    public int Count => _addresses.Length;

    /// <summary>How the table stored its addresses.</summary>
    public KallsymsAddressMode Mode { get; }

    /// <summary>The highest address of any symbol (the end of the kernel image).</summary>
    public ulong LastAddress => _addresses[^1];

    /// <summary>Reads the tables and indexes them.</summary>
    /// <param name="read">Reads kernel memory at running virtual addresses.</param>
    /// <param name="tables">Where the tables are (<see cref="KallsymsTables.FromVmcoreInfo"/>).</param>
    /// <param name="model">The kernel's data model.</param>
    /// <param name="source">What the memory is, for messages.</param>
    /// <exception cref="KvmFormatException">A table is damaged (see <see cref="KallsymsImage.Decode"/>).</exception>
    /// <exception cref="KvmReadException">Memory a table needs cannot be read.</exception>
    public static KernelKallsyms Load(ReadVirtualMemory read, KallsymsTables tables, DataModel model, string source)
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(tables);
        if (!tables.BaseRelative && tables.Addresses is null)
            throw new ArgumentException("the tables name neither kallsyms_offsets with kallsyms_relative_base nor kallsyms_addresses", nameof(tables));
        var limit = model == DataModel.LP64 ? ulong.MaxValue : uint.MaxValue;
        var count = (int)BinaryPrimitives.ReadUInt32LittleEndian(Exact(read, "kallsyms_num_syms", tables.NumSyms, 4, limit, source).Bytes);
        if (count is <= 0 or > KallsymsImage.MaxSymbols)
            throw new KvmFormatException(source, null, $"kallsyms_num_syms at 0x{tables.NumSyms:x}: {(uint)count} symbols, expected 1 to {KallsymsImage.MaxSymbols}");
        var (tokenBytes, tokenStart, tokenLength) = ReadTokens(read, tables, limit, source);

        var region = new KallsymsRegion(read, "kallsyms_names", tables.Names, KallsymsImage.MaxNamesBytes, limit, source);
        var offsets = new int[count];
        var hashes = new int[count];
        var stextIndex = -1;
        Span<byte> text = stackalloc byte[KallsymsImage.MaxNameBytes];
        var where = $"kallsyms_names at 0x{tables.Names:x}";
        long pos = 0;
        for (var i = 0; i < count; i++)
        {
            if (!region.TryEnsure(pos + 2) && !region.TryEnsure(pos + 1))
                throw new KvmFormatException(source, null, $"{where}: symbol {i} at byte {pos}: its length runs past the {region.Cap} bytes the stream may take");
            var (length, header) = ReadLength(region.Bytes, (int)pos, tables.TwoByteLengths, source, where, i);
            if (!region.TryEnsure(pos + header + length))
                throw new KvmFormatException(source, null, $"{where}: symbol {i} at byte {pos}: its {length} tokens run past the {region.Cap} bytes the stream may take");
            var expanded = Expand(region.Bytes.Slice((int)pos + header, length), tokenBytes, tokenStart, tokenLength, text, source, where, i, pos);
            var type = text[0];
            if (type is < 0x21 or > 0x7e)
                throw new KvmFormatException(source, null, $"{where}: symbol {i} at byte {pos}: type byte 0x{type:x2} is not a printable ASCII letter");
            var name = text[1..expanded];
            if (stextIndex < 0 && name.SequenceEqual("_stext"u8))
                stextIndex = i;
            offsets[i] = (int)pos;
            hashes[i] = Hash(name);
            pos += header + length;
        }
        var names = region.Bytes[..(int)pos].ToArray();
        if (tables.Stext is { } wanted && stextIndex < 0)
            throw new KvmFormatException(source, null, $"{where}: no _stext among the {count} names, though VMCOREINFO gives SYMBOL(_stext)=0x{wanted:x}");
        var (addresses, mode) = ReadAddresses(read, tables, model, count, stextIndex, limit, source);
        return new KernelKallsyms(names, offsets, hashes, addresses, tokenBytes, tokenStart, tokenLength, tables.TwoByteLengths, mode);
    }

    private static (int Length, int Header) ReadLength(ReadOnlySpan<byte> bytes, int pos, bool twoByte, string source, string where, int i)
    {
        int length = bytes[pos];
        var header = 1;
        if (twoByte && (length & 0x80) != 0)
        {
            if (pos + 1 >= bytes.Length)
                throw new KvmFormatException(source, null, $"{where}: symbol {i} at byte {pos}: the second byte of its length runs past the stream");
            int high = bytes[pos + 1];
            if ((high & 0x80) != 0)
                throw new KvmFormatException(source, null, $"{where}: symbol {i} at byte {pos}: length bytes 0x{length:x2} 0x{high:x2} do not end in two bytes (a length is at most 0x3fff)");
            length = (length & 0x7f) | (high << 7);
            header = 2;
        }
        if (length == 0 || length > KallsymsImage.MaxNameBytes)
            throw new KvmFormatException(source, null, $"{where}: symbol {i} at byte {pos}: length {length} tokens, expected 1 to {KallsymsImage.MaxNameBytes}");
        return (length, header);
    }

    private static int Expand(ReadOnlySpan<byte> data, byte[] tokenBytes, int[] tokenStart, int[] tokenLength, Span<byte> text,
        string source, string where, int i, long pos)
    {
        var expanded = 0;
        foreach (var token in data)
        {
            var n = tokenLength[token];
            if (expanded + n > text.Length)
                throw new KvmFormatException(source, null, $"{where}: symbol {i} at byte {pos}: expands to more than {KallsymsImage.MaxNameBytes} bytes");
            tokenBytes.AsSpan(tokenStart[token], n).CopyTo(text[expanded..]);
            expanded += n;
        }
        if (expanded < 2)
            throw new KvmFormatException(source, null, $"{where}: symbol {i} at byte {pos}: expands to {expanded} byte(s), expected a type letter and a name");
        return expanded;
    }

    /// <summary>FNV-1a over the name's bytes.</summary>
    private static int Hash(ReadOnlySpan<byte> name)
    {
        var h = 2166136261u;
        foreach (var b in name)
            h = (h ^ b) * 16777619u;
        return (int)h;
    }

    private static (byte[] Bytes, int[] Start, int[] Length) ReadTokens(ReadVirtualMemory read, KallsymsTables tables, ulong limit, string source)
    {
        var index = Exact(read, "kallsyms_token_index", tables.TokenIndex, KallsymsImage.TokenCount * 2, limit, source);
        var table = new KallsymsRegion(read, "kallsyms_token_table", tables.TokenTable, KallsymsImage.MaxTokenTableBytes, limit, source);
        var start = new int[KallsymsImage.TokenCount];
        var length = new int[KallsymsImage.TokenCount];
        var offset = 0;
        for (var i = 0; i < KallsymsImage.TokenCount; i++)
        {
            int at = BinaryPrimitives.ReadUInt16LittleEndian(index.Bytes[(i * 2)..]);
            if (at != offset)
                throw new KvmFormatException(source, null, $"kallsyms_token_index at 0x{tables.TokenIndex:x}: entry {i} is {at}, expected {offset} (each token follows the one before)");
            int nul;
            while ((nul = table.Bytes[offset..].IndexOf((byte)0)) < 0)
            {
                if (table.Length - offset > KallsymsImage.MaxTokenBytes || !table.TryEnsure(Math.Min((long)offset + KallsymsImage.MaxTokenBytes + 1, table.Length + 1L)))
                    throw new KvmFormatException(source, null, $"kallsyms_token_table at 0x{tables.TokenTable:x}: token {i} at byte {offset} has no NUL within {KallsymsImage.MaxTokenBytes} bytes");
            }
            if (nul > KallsymsImage.MaxTokenBytes)
                throw new KvmFormatException(source, null, $"kallsyms_token_table at 0x{tables.TokenTable:x}: token {i} at byte {offset} is {nul} bytes long, expected at most {KallsymsImage.MaxTokenBytes}");
            start[i] = offset;
            length[i] = nul;
            offset += nul + 1;
        }
        return (table.Bytes[..offset].ToArray(), start, length);
    }

    private static (ulong[] Addresses, KallsymsAddressMode Mode) ReadAddresses(ReadVirtualMemory read, KallsymsTables tables, DataModel model,
        int count, int stextIndex, ulong limit, string source)
    {
        var pointer = model.PointerSize();
        var addresses = new ulong[count];
        if (!tables.BaseRelative)
        {
            var at = tables.Addresses!.Value;
            var raw = Exact(read, "kallsyms_addresses", at, count * pointer, limit, source).Bytes;
            for (var i = 0; i < count; i++)
                addresses[i] = pointer == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(raw[(i * 8)..]) : BinaryPrimitives.ReadUInt32LittleEndian(raw[(i * 4)..]);
            if (Check(addresses, stextIndex, tables.Stext) is { } unordered)
                throw new KvmFormatException(source, null, $"kallsyms_addresses at 0x{at:x}: {unordered}");
            return (addresses, KallsymsAddressMode.Absolute);
        }
        var offsetsAt = tables.Offsets!.Value;
        var offsets = Exact(read, "kallsyms_offsets", offsetsAt, count * 4, limit, source);
        var baseBytes = Exact(read, "kallsyms_relative_base", tables.RelativeBase!.Value, pointer, limit, source).Bytes;
        var relativeBase = pointer == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(baseBytes) : BinaryPrimitives.ReadUInt32LittleEndian(baseBytes);
        var why = FromOffsets(offsets.Bytes, relativeBase, KallsymsAddressMode.BaseRelative, limit, addresses) ?? Check(addresses, stextIndex, tables.Stext);
        if (why is null && tables.Stext is not null)
            return (addresses, KallsymsAddressMode.BaseRelative);
        var other = new ulong[count];
        var otherWhy = FromOffsets(offsets.Bytes, relativeBase, KallsymsAddressMode.AbsolutePerCpu, limit, other) ?? Check(other, stextIndex, tables.Stext);
        if (why is null && otherWhy is null && !addresses.AsSpan().SequenceEqual(other))
            throw new KvmFormatException(source, null, $"kallsyms_offsets at 0x{offsetsAt:x}: both the base-relative and the absolute per-CPU encodings fit, and VMCOREINFO has no SYMBOL(_stext) to tell them apart");
        if (why is null)
            return (addresses, KallsymsAddressMode.BaseRelative);
        if (otherWhy is null)
            return (other, KallsymsAddressMode.AbsolutePerCpu);
        throw new KvmFormatException(source, null, $"kallsyms_offsets at 0x{offsetsAt:x} (kallsyms_relative_base 0x{relativeBase:x}): no address encoding fits: base-relative: {why}; absolute per-CPU: {otherWhy}");
    }

    private static string? FromOffsets(ReadOnlySpan<byte> raw, ulong relativeBase, KallsymsAddressMode mode, ulong limit, ulong[] into)
    {
        var anyNegative = false;
        for (var i = 0; i < into.Length; i++)
        {
            var value = BinaryPrimitives.ReadInt32LittleEndian(raw[(i * 4)..]);
            if (mode == KallsymsAddressMode.AbsolutePerCpu && value >= 0)
            {
                into[i] = (ulong)value;
                continue;
            }
            // Base-relative: base + (u32)offset. Absolute per-CPU, negative offset: base - 1 - offset.
            var delta = mode == KallsymsAddressMode.BaseRelative ? (uint)value : (ulong)(-(long)value) - 1;
            anyNegative |= value < 0;
            var address = relativeBase + delta;
            if (address < relativeBase || address > limit)
                return $"symbol {i}: 0x{relativeBase:x} + 0x{delta:x} lies outside the address space";
            into[i] = address;
        }
        return mode == KallsymsAddressMode.AbsolutePerCpu && !anyNegative ? "no offset is negative" : null;
    }

    private static string? Check(ulong[] addresses, int stextIndex, ulong? stext)
    {
        for (var i = 1; i < addresses.Length; i++)
        {
            if (addresses[i] < addresses[i - 1])
                return $"symbol {i} at 0x{addresses[i]:x} lies below symbol {i - 1} at 0x{addresses[i - 1]:x}, but the kernel keeps kallsyms in address order";
        }
        return stext is { } wanted && stextIndex >= 0 && addresses[stextIndex] != wanted
            ? $"_stext (symbol {stextIndex}) decodes to 0x{addresses[stextIndex]:x}, but VMCOREINFO gives SYMBOL(_stext)=0x{wanted:x}"
            : null;
    }

    private static KallsymsRegion Exact(ReadVirtualMemory read, string table, ulong at, int size, ulong limit, string source)
    {
        var region = new KallsymsRegion(read, table, at, size, limit, source);
        if (!region.TryEnsure(size))
            throw new KvmFormatException(source, null, $"{table} at 0x{at:x}: its {size} bytes run past the end of the address space");
        return region;
    }

    /// <summary>Expands symbol <paramref name="i"/> into <paramref name="text"/>: its type letter, then its name.</summary>
    private int ExpandAt(int i, Span<byte> text)
    {
        var pos = _offsets[i];
        int length = _names[pos];
        var header = 1;
        if (_twoByteLengths && (length & 0x80) != 0)
        {
            length = (length & 0x7f) | (_names[pos + 1] << 7);
            header = 2;
        }
        var expanded = 0;
        foreach (var token in _names.AsSpan(pos + header, length))
        {
            var n = _tokenLength[token];
            _tokenBytes.AsSpan(_tokenStart[token], n).CopyTo(text[expanded..]);
            expanded += n;
        }
        return expanded;
    }

    private KernelSymbol SymbolAt(int i)
    {
        Span<byte> text = stackalloc byte[KallsymsImage.MaxNameBytes];
        var n = ExpandAt(i, text);
        return new KernelSymbol(Encoding.UTF8.GetString(text[1..n]), _addresses[i], (char)text[0]);
    }

    /// <summary>Looks a symbol up by exact name: a global symbol wins over locals of the same name; among equals, the
    /// first in the kernel's order. The address is a running address.</summary>
    public bool TryLookup(string name, out KernelSymbol symbol)
    {
        ArgumentNullException.ThrowIfNull(name);
        var index = _found.GetOrAdd(name, Find);
        symbol = index >= 0 ? new KernelSymbol(name, _addresses[index], TypeAt(index)) : default;
        return index >= 0;
    }

    private char TypeAt(int i)
    {
        Span<byte> text = stackalloc byte[KallsymsImage.MaxNameBytes];
        ExpandAt(i, text);
        return (char)text[0];
    }

    private int Find(string name)
    {
        if (Encoding.UTF8.GetByteCount(name) >= KallsymsImage.MaxNameBytes)
            return -1;
        Span<byte> wanted = stackalloc byte[KallsymsImage.MaxNameBytes];
        wanted = wanted[..Encoding.UTF8.GetBytes(name, wanted)];
        var hash = Hash(wanted);
        Span<byte> text = stackalloc byte[KallsymsImage.MaxNameBytes];
        var firstLocal = -1;
        for (var i = 0; i < _hashes.Length; i++)
        {
            if (_hashes[i] != hash)
                continue;
            var n = ExpandAt(i, text);
            if (!text[1..n].SequenceEqual(wanted))
                continue;
            if (text[0] is >= (byte)'A' and <= (byte)'Z')
                return i;
            if (firstLocal < 0)
                firstLocal = i;
        }
        return firstLocal;
    }

    /// <summary>The symbol with the greatest address not above <paramref name="address"/>; ties go to the first in the
    /// kernel's order.</summary>
    public bool TryFindNearest(ulong address, out KernelSymbol symbol)
    {
        var i = SymbolIndex.Nearest(_addresses, address);
        symbol = i < 0 ? default : SymbolAt(i);
        return i >= 0;
    }

    /// <summary>The first symbol above <paramref name="address"/>, absolute ones (type A or a) left out: where the
    /// symbol at or below it ends.</summary>
    public bool TryFindNext(ulong address, out KernelSymbol symbol)
    {
        for (var i = SymbolIndex.FirstAbove(_addresses, address); i < _addresses.Length; i++)
        {
            if (TypeAt(i) is 'A' or 'a')
                continue;
            symbol = SymbolAt(i);
            return true;
        }
        symbol = default;
        return false;
    }
}
