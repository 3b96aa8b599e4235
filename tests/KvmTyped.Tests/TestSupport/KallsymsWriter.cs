using System.Text;
using KvmTyped.Symbols;

namespace KvmTyped.Tests.TestSupport;

/// <summary>Builds kallsyms tables in memory the way scripts/kallsyms.c lays them out (Linux 6.1): addresses
/// (<c>kallsyms_offsets</c> + <c>kallsyms_relative_base</c>, or <c>kallsyms_addresses</c>), <c>kallsyms_num_syms</c>,
/// <c>kallsyms_names</c>, <c>kallsyms_markers</c>, <c>kallsyms_token_table</c>, <c>kallsyms_token_index</c>, each label
/// pointer-aligned. Names are compressed with a token table: every byte value a name uses stands for itself, and
/// the unused byte values stand for the extra tokens given (the longest match wins when encoding).</summary>
internal sealed class KallsymsWriter(DataModel model, KallsymsAddressMode mode)
{
    /// <summary>Where the first table starts.</summary>
    public ulong At { get; init; } = model == DataModel.LP64 ? 0xffffffff82000000 : 0xc1a00000;

    /// <summary>Multi-character tokens for the unused byte values, in order.</summary>
    public IReadOnlyList<string> ExtraTokens { get; init; } = ["kallsyms_", "_stext", "init_", "_text", "per_cpu", "sys_", "_t", "er", "in", "at"];

    /// <summary>Whether lengths of 128 tokens or more take two bytes (Linux 6.1 on); else one byte.</summary>
    public bool TwoByteLengths { get; init; } = true;

    /// <summary>Bytes of readable memory after the last table.</summary>
    public int Slack { get; init; }

    /// <summary>The symbols, in the order they are written (the kernel's: ascending address).</summary>
    public List<KernelSymbol> Symbols { get; } = [];

    public KallsymsWriter Add(string name, ulong address, char type = 't')
    {
        Symbols.Add(new KernelSymbol(name, address, type));
        return this;
    }

    /// <summary>The memory image and the tables' addresses.</summary>
    public Built Build(bool withStext = true)
    {
        var ptr = model.PointerSize();
        var texts = Symbols.Select(s => Encoding.UTF8.GetBytes(s.Type + s.Name)).ToList();
        var tokens = MakeTokens(texts);
        var encoded = texts.Select(t => Encode(t, tokens)).ToList();

        var image = new List<byte>();
        void Align()
        {
            while (image.Count % ptr != 0)
                image.Add(0);
        }
        void Word(ulong v, int size)
        {
            for (var i = 0; i < size; i++)
                image.Add((byte)(v >> (8 * i)));
        }

        ulong? offsets = null, relativeBase = null, addresses = null;
        if (mode == KallsymsAddressMode.Absolute)
        {
            addresses = At;
            foreach (var s in Symbols)
                Word(s.Address, ptr);
        }
        else
        {
            offsets = At;
            var baseAddress = mode == KallsymsAddressMode.BaseRelative
                ? Symbols.Min(s => s.Address)
                : Symbols.Where(s => !IsPerCpu(s)).Min(s => s.Address);
            foreach (var s in Symbols)
            {
                long value = mode == KallsymsAddressMode.BaseRelative ? (long)(s.Address - baseAddress)
                    : IsPerCpu(s) ? (long)s.Address
                    : (long)baseAddress - (long)s.Address - 1;
                Word((ulong)value, 4);
            }
            Align();
            relativeBase = At + (ulong)image.Count;
            Word(baseAddress, ptr);
        }
        Align();
        var numSyms = At + (ulong)image.Count;
        Word((ulong)Symbols.Count, 4);
        Align();
        var names = At + (ulong)image.Count;
        var nameOffsets = new List<int>();
        foreach (var e in encoded)
        {
            nameOffsets.Add(image.Count - (int)(names - At));
            if (e.Length <= 0x7f || !TwoByteLengths)
            {
                image.Add((byte)e.Length);
            }
            else
            {
                image.Add((byte)((e.Length & 0x7f) | 0x80));
                image.Add((byte)(e.Length >> 7));
            }
            image.AddRange(e);
        }
        Align();
        for (var i = 0; i < (Symbols.Count + 255) / 256; i++)
            Word((uint)nameOffsets[i * 256], 4);
        Align();
        var tokenTable = At + (ulong)image.Count;
        var tokenStarts = new int[256];
        for (var i = 0; i < 256; i++)
        {
            tokenStarts[i] = image.Count - (int)(tokenTable - At);
            image.AddRange(tokens[i]);
            image.Add(0);
        }
        Align();
        var tokenIndex = At + (ulong)image.Count;
        foreach (var start in tokenStarts)
            Word((ushort)start, 2);
        image.AddRange(new byte[Slack]);

        var memory = new FlatKernelMemory(model, At, image.Count);
        image.CopyTo(memory.Bytes);
        var stext = withStext ? Symbols.Where(s => s.Name == "_stext").Select(s => (ulong?)s.Address).FirstOrDefault() : null;
        var tables = new KallsymsTables(numSyms, names, tokenTable, tokenIndex, offsets, relativeBase, addresses, stext, TwoByteLengths);
        return new Built(memory, tables, nameOffsets, tokens);
    }

    private static bool IsPerCpu(KernelSymbol s) => s.Address <= int.MaxValue;

    private byte[][] MakeTokens(List<byte[]> texts)
    {
        var tokens = new byte[256][];
        var used = new bool[256];
        foreach (var t in texts)
            foreach (var b in t)
                used[b] = true;
        var extra = ExtraTokens.GetEnumerator();
        for (var i = 0; i < 256; i++)
        {
            if (used[i])
                tokens[i] = [(byte)i];
            else
                tokens[i] = extra.MoveNext() ? Encoding.UTF8.GetBytes(extra.Current) : [];
        }
        return tokens;
    }

    private static byte[] Encode(byte[] text, byte[][] tokens)
    {
        var output = new List<byte>();
        var pos = 0;
        while (pos < text.Length)
        {
            int best = -1, bestLength = 0;
            for (var i = 0; i < 256; i++)
            {
                var t = tokens[i];
                if (t.Length > bestLength && pos + t.Length <= text.Length && text.AsSpan(pos, t.Length).SequenceEqual(t))
                {
                    best = i;
                    bestLength = t.Length;
                }
            }
            output.Add((byte)best);
            pos += bestLength;
        }
        return [.. output];
    }

    /// <summary>A written image.</summary>
    /// <param name="Memory">The memory holding the tables; nothing outside it is readable.</param>
    /// <param name="Tables">Where the tables are, as VMCOREINFO would say.</param>
    /// <param name="NameOffsets">Where each symbol's entry starts in <c>kallsyms_names</c>.</param>
    /// <param name="Tokens">The 256 tokens.</param>
    public sealed record Built(FlatKernelMemory Memory, KallsymsTables Tables, List<int> NameOffsets, byte[][] Tokens)
    {
        /// <summary>Decodes the image.</summary>
        public KallsymsSymbolTable Decode(DataModel model) => KallsymsImage.Decode(Memory.TryReadVirtual, Tables, model, "test.vmcore");

        /// <summary>The byte at a table's address plus an offset, for damaging it.</summary>
        public ref byte At(ulong tableAddress, long offset = 0) => ref Memory.Bytes[(int)(tableAddress - Memory.Base + (ulong)offset)];
    }
}
