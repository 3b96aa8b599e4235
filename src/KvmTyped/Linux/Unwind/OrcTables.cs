using System.Buffers.Binary;
using System.Globalization;
using KvmTyped.Arch.X86;
using KvmTyped.Linux.Kernel.X86_64;
using KvmTyped.Types;

namespace KvmTyped.Linux.Unwind;

/// <summary>Finds the ORC entry that covers a code address.</summary>
internal interface IOrcLookup
{
    /// <summary>The entry for <paramref name="ip"/>, or null with why there is none.</summary>
    OrcEntry? Find(ulong ip, out string? why);
}

/// <summary>The kernel's ORC tables, read from the image's own memory as the kernel reads them (arch/x86/kernel/
/// unwind_orc.c): for vmlinux's text the fast table <c>orc_lookup</c> (one entry index per 256-byte block of
/// <c>_stext</c>..<c>_etext</c>, <c>lookup_num_blocks</c> of them) narrows a binary search of
/// <c>__start_orc_unwind_ip</c> (ints, each an address relative to itself) and <c>__start_orc_unwind</c> (struct
/// orc_entry); init text searches the whole table; module code searches the module's own <c>arch</c> tables.</summary>
internal sealed class OrcTables : IOrcLookup
{
    /// <summary>The most entries a table may have (vmlinux has about half a million).</summary>
    public const uint MaxEntries = 1 << 24;

    /// <summary>The fast table's block: LOOKUP_BLOCK_SIZE (1 &lt;&lt; LOOKUP_BLOCK_ORDER, 8).</summary>
    public const ulong LookupBlockSize = 256;

    private readonly IKernelMemory _memory;
    private readonly ulong _ipTable, _entries, _text, _etext, _initText, _einitText, _lookup;
    private readonly uint _count, _lookupBlocks;
    private readonly OrcVersion _version;
    private readonly Func<IReadOnlyList<ModuleOrcTables>> _modules;

    private OrcTables(IKernelMemory memory, Func<string, ulong?> symbol, Func<IReadOnlyList<ModuleOrcTables>> modules)
    {
        _memory = memory;
        _modules = modules;
        var probe = orc_entry.At(memory, 0);
        var end = probe.Has_end;
        var signal = probe.Has_signal;
        _version = (end, signal) switch
        {
            (true, false) => OrcVersion.Linux4_14,
            (true, true) => OrcVersion.Linux6_3,
            (false, true) => OrcVersion.Linux6_4,
            _ => throw new KvmException("struct orc_entry has neither end nor signal: an ORC layout not known here"),
        };
        var entrySize = checked((uint)orc_entry.SizeOf(memory));
        if (entrySize is 0 or > 64)
            throw new KvmException($"struct orc_entry is {entrySize} bytes: not an ORC entry");
        ulong Need(string name) => symbol(name) ?? throw new KvmException($"the namelist has no symbol \"{name}\": the ORC tables cannot be found");
        _ipTable = Need("__start_orc_unwind_ip");
        var ipEnd = Need("__stop_orc_unwind_ip");
        _entries = Need("__start_orc_unwind");
        var entriesEnd = Need("__stop_orc_unwind");
        if (ipEnd < _ipTable || (ipEnd - _ipTable) % 4 != 0 || entriesEnd < _entries || (entriesEnd - _entries) % entrySize != 0
            || (ipEnd - _ipTable) / 4 != (entriesEnd - _entries) / entrySize || (ipEnd - _ipTable) / 4 > MaxEntries)
            throw new KvmException($"the ORC tables do not fit: {(ipEnd - _ipTable) / 4} addresses, {(entriesEnd - _entries) / entrySize} entries (at most {MaxEntries})");
        _count = (uint)((ipEnd - _ipTable) / 4);
        _text = symbol("_stext") ?? symbol("_text") ?? 0;
        _etext = symbol("_etext") ?? 0;
        _initText = symbol("_sinittext") ?? 0;
        _einitText = symbol("_einittext") ?? 0;
        if (symbol("orc_lookup") is { } lookup && symbol("orc_lookup_end") is { } lookupEnd && lookupEnd > lookup && _etext > _text)
        {
            // lookup_num_blocks is what unwind_init() computed (orc_lookup_end - orc_lookup); where it is not readable
            // the symbols give the same.
            var blocks = (lookupEnd - lookup) / 4;
            if (symbol("lookup_num_blocks") is { } n && PerCpu.TryReadWord(memory, n, 4, out var value) && value > 0)
                blocks = Math.Min(blocks, value);
            if (blocks > 1 && blocks <= (_etext - _text) / LookupBlockSize + 2)
            {
                _lookup = lookup;
                _lookupBlocks = (uint)blocks;
            }
        }
    }

    /// <summary>Whether the namelist names the ORC tables (a kernel built with CONFIG_UNWINDER_ORC).</summary>
    public static bool Present(Func<string, ulong?> symbol) => symbol("__start_orc_unwind_ip") is not null && symbol("__start_orc_unwind") is not null;

    /// <summary>The tables of a kernel, with its modules' tables read when first needed.</summary>
    /// <exception cref="KvmException">The tables are not there, do not fit, or struct orc_entry is unknown.</exception>
    public static OrcTables Open(IKernelMemory memory, Func<string, ulong?> symbol, Func<IReadOnlyList<ModuleOrcTables>> modules) =>
        new(memory, symbol, modules);

    /// <summary>The entry layout of this kernel.</summary>
    public OrcVersion Version => _version;

    /// <summary>How many entries vmlinux's table has.</summary>
    public uint Count => _count;

    /// <summary>Whether the fast lookup table is used.</summary>
    public bool HasLookupTable => _lookup != 0;

    /// <inheritdoc/>
    public OrcEntry? Find(ulong ip, out string? why)
    {
        why = null;
        if (ip == 0)
            return OrcEntry.NullIp;
        try
        {
            if (ip >= _text && ip < _etext)
            {
                if (_lookup == 0)
                    return Search(_ipTable, _entries, _count, ip, out why);
                var idx = (ip - _text) / LookupBlockSize;
                if (idx >= _lookupBlocks - 1)
                {
                    why = $"ORC lookup block {idx} of {_lookupBlocks} is past the table";
                    return null;
                }
                var start = Word(_lookup + idx * 4);
                var stop = Word(_lookup + (idx + 1) * 4) + 1;
                if (start >= _count || stop > _count || stop <= start)
                {
                    why = $"ORC lookup block {idx} holds entries {start}..{stop} of {_count}";
                    return null;
                }
                return Search(_ipTable + start * 4, new KPtr<orc_entry>(_memory, _entries)[(long)start].Address, (uint)(stop - start), ip, out why);
            }
            if (ip >= _initText && ip < _einitText)
                return Search(_ipTable, _entries, _count, ip, out why);
            IReadOnlyList<ModuleOrcTables> modules;
            try
            {
                modules = _modules();
            }
            catch (KvmException e)
            {
                why = $"not vmlinux text, and the modules cannot be read: {e.Message}";
                return null;
            }
            foreach (var m in modules)
            {
                if (!m.Module.Memory.Any(p => ip >= p.Base && ip - p.Base < p.Size))
                    continue;
                if (m.Count > MaxEntries)
                {
                    why = $"module {m.Module.Name} claims {m.Count} ORC entries";
                    return null;
                }
                return Search(m.IpTable, m.Entries, m.Count, ip, out why);
            }
            why = "not in vmlinux's text or any module";
            return null;
        }
        catch (KvmReadException e)
        {
            why = "the ORC table cannot be read: " + e.Message;
            return null;
        }
    }

    /// <summary>__orc_find: the last entry whose address is at or below <paramref name="ip"/> (the first entry when
    /// none is, as the kernel does).</summary>
    private OrcEntry? Search(ulong ipTable, ulong entries, uint count, ulong ip, out string? why)
    {
        why = null;
        if (count == 0)
        {
            why = "the ORC table is empty";
            return null;
        }
        long first = 0, last = count - 1, found = 0;
        while (first <= last)
        {
            var mid = first + (last - first) / 2;
            var at = ipTable + (ulong)mid * 4;
            var address = unchecked(at + (ulong)(long)(int)Word(at));
            if (address <= ip)
            {
                found = mid;
                first = mid + 1;
            }
            else
            {
                last = mid - 1;
            }
        }
        var e = new KPtr<orc_entry>(_memory, entries)[found];
        var hasEnd = _version != OrcVersion.Linux6_4;
        var hasSignal = _version != OrcVersion.Linux4_14;
        return OrcEntry.Decode(e.sp_offset, e.bp_offset, e.sp_reg, e.bp_reg, e.type, hasEnd && e.end != 0, hasSignal && e.signal != 0, _version);
    }

    private ulong Word(ulong address)
    {
        Span<byte> b = stackalloc byte[4];
        if (!_memory.TryReadVirtual(address, b, out var failure))
            throw new KvmReadException(address, $"ORC table at 0x{address.ToString("x", CultureInfo.InvariantCulture)}: {failure}");
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }
}
