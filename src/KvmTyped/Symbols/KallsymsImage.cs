using System.Buffers.Binary;
using System.Text;

namespace KvmTyped.Symbols;

/// <summary>Decodes the kernel's own symbol table (kallsyms) out of a dump's memory, so a dump of a Linux 6.0+
/// kernel opens with no System.map: VMCOREINFO locates the tables (<see cref="KallsymsTables"/>), this reads and
/// checks them.</summary>
/// <remarks>
/// <para>The format, as <c>scripts/kallsyms.c</c> writes it and <c>kernel/kallsyms.c</c> reads it:</para>
/// <list type="bullet">
/// <item><c>kallsyms_num_syms</c>: the symbol count, 32 bits.</item>
/// <item><c>kallsyms_token_table</c>: 256 NUL-terminated tokens, each right after the one before;
/// <c>kallsyms_token_index</c>: 256 16-bit offsets of those tokens in the table.</item>
/// <item><c>kallsyms_names</c>: per symbol, a length (in tokens) then that many token numbers. Since Linux 6.1 a
/// length with its high bit set is two bytes, low 7 bits first (ULEB128, at most 0x3fff). The expanded text's first
/// character is the nm type letter, the rest the name.</item>
/// <item>Addresses (see <see cref="KallsymsAddressMode"/>): <c>kallsyms_addresses</c>, one pointer per symbol; or
/// <c>kallsyms_offsets</c>, 32 bits per symbol, with the pointer <c>kallsyms_relative_base</c>. Which offset encoding
/// a kernel uses (CONFIG_KALLSYMS_ABSOLUTE_PERCPU or not) is in no VMCOREINFO key; it is decided here by the rules the
/// kernel itself relies on: symbols come in ascending address order (its binary search needs that), the absolute
/// per-CPU encoding has at least one negative offset, and the decoded <c>_stext</c> equals VMCOREINFO's
/// <c>SYMBOL(_stext)</c> when that is given. Exactly one encoding must fit.</item>
/// </list>
/// <para>Integers are read little-endian (x86, x86-64 and arm64 kernels). Every count and length is checked against
/// the caps below before use, tables are read in chunks of up to 4 MiB (<see cref="KallsymsRegion"/>), and damage ends
/// in <see cref="KvmFormatException"/> (or <see cref="KvmReadException"/> for memory the dump lacks) naming the table,
/// its address and what was expected.</para>
/// </remarks>
internal static class KallsymsImage
{
    /// <summary>Most symbols accepted (a Debian amd64 kernel with CONFIG_KALLSYMS_ALL has about 94,000).</summary>
    public const int MaxSymbols = 4 << 20;

    /// <summary>Longest <c>kallsyms_names</c> stream accepted (the Debian amd64 kernel's is under 1 MiB).</summary>
    public const int MaxNamesBytes = 64 << 20;

    /// <summary>Tokens in <c>kallsyms_token_table</c>: one per byte value.</summary>
    public const int TokenCount = 256;

    /// <summary>Longest token accepted, without its NUL (scripts/kallsyms.c expands tokens into a KSYM_NAME_LEN = 512 buffer).</summary>
    public const int MaxTokenBytes = 1024;

    /// <summary>Longest expanded symbol (type letter and name) accepted; KSYM_NAME_LEN is 512 since Linux 6.1.</summary>
    public const int MaxNameBytes = 1024;

    /// <summary>Longest token table accepted: the last token starts at a 16-bit offset.</summary>
    public const int MaxTokenTableBytes = ushort.MaxValue + MaxTokenBytes + 1;

    /// <summary>Decodes the symbol table.</summary>
    /// <param name="read">Reads kernel memory at running virtual addresses, e.g. <c>kvm.TryReadVirtual</c>.</param>
    /// <param name="tables">Where the tables are (<see cref="KallsymsTables.FromVmcoreInfo"/>).</param>
    /// <param name="model">The kernel's data model: the width of pointers and addresses.</param>
    /// <param name="source">The dump's name, for messages and <see cref="ISymbolTable.Source"/>.</param>
    /// <param name="machine">The kernel's machine, when known.</param>
    /// <returns>The symbols, with running (KASLR-relocated) addresses.</returns>
    /// <exception cref="KvmFormatException">A table is damaged: a count, length, token offset or address is out of
    /// range, the addresses are out of order, or <c>_stext</c> disagrees with VMCOREINFO.</exception>
    /// <exception cref="KvmReadException">Memory a table needs is not in the dump.</exception>
    public static KallsymsSymbolTable Decode(ReadVirtualMemory read, KallsymsTables tables, DataModel model, string source,
        KernelMachine machine = KernelMachine.Unknown)
    {
        if (!tables.BaseRelative && tables.Addresses is null)
            throw new ArgumentException("the tables name neither kallsyms_offsets with kallsyms_relative_base nor kallsyms_addresses", nameof(tables));
        var limit = model == DataModel.LP64 ? ulong.MaxValue : uint.MaxValue;
        var count = ReadCount(read, tables, limit, source);
        var (tokenBytes, tokenStart, tokenLength) = ReadTokens(read, tables, limit, source);
        var (names, types, stextIndex) = ReadNames(read, tables, count, tokenBytes, tokenStart, tokenLength, limit, source);
        var (addresses, mode) = ReadAddresses(read, tables, model, count, names, stextIndex, limit, source);
        var symbols = new List<KernelSymbol>(count);
        for (var i = 0; i < count; i++)
            symbols.Add(new KernelSymbol(names[i], addresses[i], (char)types[i]));
        return new KallsymsSymbolTable(source, model, machine, mode, symbols);
    }

    private static int ReadCount(ReadVirtualMemory read, KallsymsTables tables, ulong limit, string source)
    {
        var region = Exact(read, "kallsyms_num_syms", tables.NumSyms, 4, limit, source);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(region.Bytes);
        if (count == 0 || count > MaxSymbols)
            throw new KvmFormatException(source, null,
                $"kallsyms_num_syms at 0x{tables.NumSyms:x}: {count} symbols, expected 1 to {MaxSymbols}");
        return (int)count;
    }

    private static (byte[] Bytes, int[] Start, int[] Length) ReadTokens(ReadVirtualMemory read, KallsymsTables tables, ulong limit, string source)
    {
        var indexRegion = Exact(read, "kallsyms_token_index", tables.TokenIndex, TokenCount * 2, limit, source);
        var table = new KallsymsRegion(read, "kallsyms_token_table", tables.TokenTable, MaxTokenTableBytes, limit, source);
        var start = new int[TokenCount];
        var length = new int[TokenCount];
        var offset = 0;
        for (var i = 0; i < TokenCount; i++)
        {
            int index = BinaryPrimitives.ReadUInt16LittleEndian(indexRegion.Bytes[(i * 2)..]);
            if (index != offset)
                throw new KvmFormatException(source, null, i == 0
                    ? $"kallsyms_token_index at 0x{tables.TokenIndex:x}: entry 0 is {index}, expected 0 (the first token starts the table)"
                    : $"kallsyms_token_index at 0x{tables.TokenIndex:x}: entry {i} is {index}, expected {offset} (token {i - 1} ends at byte {offset - 1} of kallsyms_token_table, and each token follows the one before)");
            int nul;
            while ((nul = table.Bytes[offset..].IndexOf((byte)0)) < 0)
            {
                var have = table.Length - offset;
                if (have > MaxTokenBytes || !table.TryEnsure(Math.Min((long)offset + MaxTokenBytes + 1, table.Length + 1L)))
                    throw new KvmFormatException(source, null,
                        $"kallsyms_token_table at 0x{tables.TokenTable:x}: token {i} at byte {offset} has no NUL within {MaxTokenBytes} bytes{(have > MaxTokenBytes ? "" : " before the end of the address space")}");
            }
            if (nul > MaxTokenBytes)
                throw new KvmFormatException(source, null,
                    $"kallsyms_token_table at 0x{tables.TokenTable:x}: token {i} at byte {offset} is {nul} bytes long, expected at most {MaxTokenBytes}");
            start[i] = offset;
            length[i] = nul;
            offset += nul + 1;
        }
        return (table.Bytes[..offset].ToArray(), start, length);
    }

    private static (string[] Names, byte[] Types, int StextIndex) ReadNames(ReadVirtualMemory read, KallsymsTables tables, int count,
        byte[] tokenBytes, int[] tokenStart, int[] tokenLength, ulong limit, string source)
    {
        var region = new KallsymsRegion(read, "kallsyms_names", tables.Names, MaxNamesBytes, limit, source);
        var names = new string[count];
        var types = new byte[count];
        var stextIndex = -1;
        Span<byte> text = stackalloc byte[MaxNameBytes];
        var where = $"kallsyms_names at 0x{tables.Names:x}";
        long pos = 0;
        for (var i = 0; i < count; i++)
        {
            if (!region.TryEnsure(pos + 1))
                throw PastEnd(source, where, region, i, pos, "its length");
            int length = region.Bytes[(int)pos];
            var header = 1;
            if (tables.TwoByteLengths && (length & 0x80) != 0)
            {
                if (!region.TryEnsure(pos + 2))
                    throw PastEnd(source, where, region, i, pos, "the second byte of its length");
                int high = region.Bytes[(int)pos + 1];
                if ((high & 0x80) != 0)
                    throw new KvmFormatException(source, null,
                        $"{where}: symbol {i} at byte {pos}: length bytes 0x{length:x2} 0x{high:x2} do not end in two bytes (a length is at most 0x3fff)");
                length = (length & 0x7f) | (high << 7);
                header = 2;
            }
            if (length == 0)
                throw new KvmFormatException(source, null, $"{where}: symbol {i} at byte {pos}: length 0 (every symbol has a type and a name)");
            if (length > MaxNameBytes)
                throw new KvmFormatException(source, null,
                    $"{where}: symbol {i} at byte {pos}: length {length} tokens, expected at most {MaxNameBytes}");
            if (!region.TryEnsure(pos + header + length))
                throw PastEnd(source, where, region, i, pos, $"its {length} tokens");
            var data = region.Bytes.Slice((int)pos + header, length);
            var expanded = 0;
            foreach (var token in data)
            {
                var n = tokenLength[token];
                if (expanded + n > MaxNameBytes)
                    throw new KvmFormatException(source, null,
                        $"{where}: symbol {i} at byte {pos}: expands to more than {MaxNameBytes} bytes");
                if (n == 1)
                    text[expanded] = tokenBytes[tokenStart[token]];
                else
                    tokenBytes.AsSpan(tokenStart[token], n).CopyTo(text[expanded..]);
                expanded += n;
            }
            if (expanded < 2)
                throw new KvmFormatException(source, null,
                    $"{where}: symbol {i} at byte {pos}: expands to {expanded} byte(s), expected a type letter and a name");
            var type = text[0];
            if (type is < 0x21 or > 0x7e)
                throw new KvmFormatException(source, null,
                    $"{where}: symbol {i} at byte {pos}: type byte 0x{type:x2} is not a printable ASCII letter");
            var name = text[1..expanded];
            if (stextIndex < 0 && name.SequenceEqual("_stext"u8))
                stextIndex = i;
            names[i] = Encoding.UTF8.GetString(name);
            types[i] = type;
            pos += header + length;
        }
        return (names, types, stextIndex);
    }

    private static KvmFormatException PastEnd(string source, string where, KallsymsRegion region, int symbol, long pos, string what) =>
        new(source, null, $"{where}: symbol {symbol} at byte {pos}: {what} would run past the {region.Cap} bytes the stream may take"
            + (region.Cap < MaxNamesBytes ? " before the end of the address space" : $" ({MaxNamesBytes >> 20} MiB)"));

    private static (ulong[] Addresses, KallsymsAddressMode Mode) ReadAddresses(ReadVirtualMemory read, KallsymsTables tables, DataModel model,
        int count, string[] names, int stextIndex, ulong limit, string source)
    {
        var pointer = model.PointerSize();
        if (tables.Stext is { } wanted && stextIndex < 0)
            throw new KvmFormatException(source, null,
                $"kallsyms_names at 0x{tables.Names:x}: no _stext among the {count} names, though VMCOREINFO gives SYMBOL(_stext)=0x{wanted:x}");
        if (!tables.BaseRelative)
        {
            var at = tables.Addresses!.Value;
            var raw = Exact(read, "kallsyms_addresses", at, count * pointer, limit, source);
            var addresses = new ulong[count];
            for (var i = 0; i < count; i++)
                addresses[i] = pointer == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(raw.Bytes[(i * 8)..]) : BinaryPrimitives.ReadUInt32LittleEndian(raw.Bytes[(i * 4)..]);
            var why = Ordered(addresses, names) ?? StextAgrees(addresses, stextIndex, tables.Stext);
            if (why is not null)
                throw new KvmFormatException(source, null, $"kallsyms_addresses at 0x{at:x}: {why}");
            return (addresses, KallsymsAddressMode.Absolute);
        }

        var offsetsAt = tables.Offsets!.Value;
        var baseAt = tables.RelativeBase!.Value;
        var offsets = Exact(read, "kallsyms_offsets", offsetsAt, count * 4, limit, source);
        var baseRegion = Exact(read, "kallsyms_relative_base", baseAt, pointer, limit, source);
        var relativeBase = pointer == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(baseRegion.Bytes) : BinaryPrimitives.ReadUInt32LittleEndian(baseRegion.Bytes);
        var reasons = new List<string>(2);
        (ulong[] Addresses, KallsymsAddressMode Mode)? chosen = null;
        var ambiguous = false;
        foreach (var mode in (ReadOnlySpan<KallsymsAddressMode>)[KallsymsAddressMode.BaseRelative, KallsymsAddressMode.AbsolutePerCpu])
        {
            var addresses = new ulong[count];
            var why = FromOffsets(offsets.Bytes, relativeBase, mode, limit, addresses, names)
                ?? Ordered(addresses, names)
                ?? StextAgrees(addresses, stextIndex, tables.Stext);
            if (why is not null)
                reasons.Add($"{Describe(mode)}: {why}");
            else if (chosen is null)
                chosen = (addresses, mode);
            else if (!addresses.AsSpan().SequenceEqual(chosen.Value.Addresses))
                ambiguous = true;
        }
        if (chosen is null)
            throw new KvmFormatException(source, null,
                $"kallsyms_offsets at 0x{offsetsAt:x} (kallsyms_relative_base 0x{relativeBase:x}): no address encoding fits: {string.Join("; ", reasons)}");
        if (ambiguous)
            throw new KvmFormatException(source, null,
                $"kallsyms_offsets at 0x{offsetsAt:x}: both the base-relative and the absolute per-CPU encodings fit, and VMCOREINFO has no SYMBOL(_stext) to tell them apart");
        return chosen.Value;
    }

    private static string Describe(KallsymsAddressMode mode) =>
        mode == KallsymsAddressMode.BaseRelative ? "base-relative" : "absolute per-CPU";

    private static string? FromOffsets(ReadOnlySpan<byte> raw, ulong relativeBase, KallsymsAddressMode mode, ulong limit, ulong[] into, string[] names)
    {
        var anyNegative = false;
        for (var i = 0; i < into.Length; i++)
        {
            var value = BinaryPrimitives.ReadInt32LittleEndian(raw[(i * 4)..]);
            ulong address;
            if (mode == KallsymsAddressMode.AbsolutePerCpu && value >= 0)
            {
                address = (ulong)value;
            }
            else
            {
                // Base-relative: base + (u32)offset. Absolute per-CPU, negative offset: base - 1 - offset.
                var delta = mode == KallsymsAddressMode.BaseRelative ? (uint)value : (ulong)(-(long)value) - 1;
                anyNegative |= value < 0;
                address = relativeBase + delta;
                if (address < relativeBase || address > limit)
                    return $"symbol {i} (\"{names[i]}\"): 0x{relativeBase:x} + 0x{delta:x} lies outside the {(limit == uint.MaxValue ? "32" : "64")}-bit address space";
            }
            into[i] = address;
        }
        if (mode == KallsymsAddressMode.AbsolutePerCpu && !anyNegative)
            return "no offset is negative, so no symbol would be relative to kallsyms_relative_base";
        return null;
    }

    private static string? Ordered(ulong[] addresses, string[] names)
    {
        for (var i = 1; i < addresses.Length; i++)
        {
            if (addresses[i] < addresses[i - 1])
                return $"symbol {i} (\"{names[i]}\") at 0x{addresses[i]:x} lies below symbol {i - 1} (\"{names[i - 1]}\") at 0x{addresses[i - 1]:x}, but the kernel keeps kallsyms in address order";
        }
        return null;
    }

    private static string? StextAgrees(ulong[] addresses, int stextIndex, ulong? stext) =>
        stext is { } wanted && addresses[stextIndex] != wanted
            ? $"_stext (symbol {stextIndex}) decodes to 0x{addresses[stextIndex]:x}, but VMCOREINFO gives SYMBOL(_stext)=0x{wanted:x}"
            : null;

    private static KallsymsRegion Exact(ReadVirtualMemory read, string table, ulong at, int size, ulong limit, string source)
    {
        var region = new KallsymsRegion(read, table, at, size, limit, source);
        if (!region.TryEnsure(size))
            throw new KvmFormatException(source, null, $"{table} at 0x{at:x}: its {size} bytes run past the end of the {(limit == uint.MaxValue ? "32" : "64")}-bit address space");
        return region;
    }
}
