using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using KvmTyped.Types;
using KvmTyped.Formats;

namespace KvmTyped.Linux;

/// <summary>One kernel log record.</summary>
/// <param name="Sequence">The record's sequence number (its position in the plain-text log: 0 there).</param>
/// <param name="TimestampNs">Nanoseconds since boot (local_clock) when it was logged.</param>
/// <param name="Level">The log level 0–7, or -1 when the layout does not show it.</param>
/// <param name="Text">The message, without the timestamp (may hold several lines).</param>
public sealed record KernelLogRecord(ulong Sequence, ulong TimestampNs, int Level, string Text)
{
    /// <summary>The record as dmesg prints it: each line prefixed with "[seconds.micros] ".</summary>
    public string Format()
    {
        var prefix = $"[{(TimestampNs / 1_000_000_000).ToString(CultureInfo.InvariantCulture),5}.{(TimestampNs % 1_000_000_000 / 1000).ToString("D6", CultureInfo.InvariantCulture)}] ";
        return prefix + Text.Replace("\n", "\n" + prefix, StringComparison.Ordinal);
    }
}

/// <summary>Reads the kernel log buffer using only VMCOREINFO (no BTF or debug information): the lockless ring
/// buffer of Linux 5.10+ (SYMBOL(prb)), the record buffer of 3.5–5.9 (SYMBOL(log_first_idx)), or the plain text
/// buffer before that (SYMBOL(log_end)).</summary>
public static class KernelLog
{
    /// <summary>The largest text ring (or log_buf) read.</summary>
    public const long MaxBufferBytes = 256L << 20;

    /// <summary>The most descriptors read from the ring (count_bits ≤ 24).</summary>
    public const int MaxCountBits = 24;

    // prb_desc state_var: the top two bits of the word hold the state, the rest the descriptor id.
    private const int StateCommitted = 1;
    private const int StateFinalized = 2;

    /// <summary>Reads the log of an opened image.</summary>
    /// <exception cref="KvmException">The image has no VMCOREINFO or it describes no log buffer, or the buffer is damaged.</exception>
    public static IReadOnlyList<KernelLogRecord> Read(Kvm kvm)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        var info = kvm.VmcoreInfo ?? throw new KvmException($"{kvm.CorePath}: no VMCOREINFO: the log buffer's layout is unknown");
        return Read(kvm, info);
    }

    /// <summary>Reads the log described by <paramref name="info"/> from <paramref name="memory"/>.</summary>
    /// <exception cref="KvmException">VMCOREINFO describes no log buffer, or the buffer is damaged or unreadable.</exception>
    public static IReadOnlyList<KernelLogRecord> Read(IKernelMemory memory, VmcoreInfo info)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(info);
        var reader = new Reader(memory, info);
        if (info.Symbol("prb") is { } prb)
            return reader.ReadRing(prb);
        if (info.Symbol("log_first_idx") is not null)
            return reader.ReadRecords();
        if (info.Symbol("log_end") is not null)
            return reader.ReadPlain();
        throw new KvmException("VMCOREINFO names no log buffer (SYMBOL(prb), SYMBOL(log_first_idx) or SYMBOL(log_end))");
    }

    private sealed class Reader(IKernelMemory memory, VmcoreInfo info)
    {
        private readonly int _ptr = memory.DataModel.PointerSize();

        private ulong Need(ulong? value, string key) => value ?? throw new KvmException($"VMCOREINFO lacks {key}");

        private ulong Symbol(string name) => Need(info.Symbol(name), $"SYMBOL({name})");

        private ulong Offset(string name) => Need(info.Offset(name), $"OFFSET({name})");

        private ulong Size(string name) => Need(info.Size(name), $"SIZE({name})");

        private void ReadBytes(ulong address, Span<byte> into, string what)
        {
            if (!memory.TryReadVirtual(address, into, out var failure))
                throw new KvmReadException(address, $"{what} at 0x{address:x}: {failure}");
        }

        private ulong Word(ulong address, int size, string what)
        {
            Span<byte> b = stackalloc byte[8];
            b.Clear();
            ReadBytes(address, b[..size], what);
            return BinaryPrimitives.ReadUInt64LittleEndian(b);
        }

        private ulong Pointer(ulong address, string what) => Word(address, _ptr, what);

        private static ulong Field(ReadOnlySpan<byte> record, ulong offset, int size, string what)
        {
            if (offset > (ulong)record.Length || (ulong)size > (ulong)record.Length - offset)
                throw new KvmException($"VMCOREINFO places {what} at {offset}, outside its {record.Length}-byte struct");
            Span<byte> b = stackalloc byte[8];
            b.Clear();
            record.Slice((int)offset, size).CopyTo(b);
            return BinaryPrimitives.ReadUInt64LittleEndian(b);
        }

        /// <summary>An offset made of two VMCOREINFO values; a sum past the word is no offset in any struct.</summary>
        private static ulong Sum(ulong a, ulong b, string what) =>
            a <= ulong.MaxValue - b ? a + b : throw new KvmException($"VMCOREINFO places {what} at {a} + {b}, past any struct");

        private byte[] Bulk(ulong address, ulong length, string what)
        {
            if (length > (ulong)MaxBufferBytes)
                throw new KvmException($"{what}: {length} bytes is more than the {MaxBufferBytes >> 20} MiB read");
            var bytes = new byte[length];
            ReadBytes(address, bytes, what);
            return bytes;
        }

        public IReadOnlyList<KernelLogRecord> ReadRing(ulong prbSymbol)
        {
            var prb = Pointer(prbSymbol, "prb");
            var descRing = prb + Offset("printk_ringbuffer.desc_ring");
            var textRing = prb + Offset("printk_ringbuffer.text_data_ring");
            var countBits = (int)Word(descRing + Offset("prb_desc_ring.count_bits"), 4, "prb_desc_ring.count_bits");
            if (countBits is < 0 or > MaxCountBits)
                throw new KvmException($"printk ring: count_bits {countBits} is not plausible (at most {MaxCountBits})");
            var descs = Pointer(descRing + Offset("prb_desc_ring.descs"), "prb_desc_ring.descs");
            var infos = Pointer(descRing + Offset("prb_desc_ring.infos"), "prb_desc_ring.infos");
            var counter = info.Offset("atomic_long_t.counter") ?? 0;
            var headId = Pointer(descRing + Offset("prb_desc_ring.head_id") + counter, "prb_desc_ring.head_id");
            var tailId = Pointer(descRing + Offset("prb_desc_ring.tail_id") + counter, "prb_desc_ring.tail_id");
            var sizeBits = (int)Word(textRing + Offset("prb_data_ring.size_bits"), 4, "prb_data_ring.size_bits");
            if (sizeBits is < 0 or > 28)
                throw new KvmException($"printk ring: text size_bits {sizeBits} is not plausible (at most 28)");
            var data = Pointer(textRing + Offset("prb_data_ring.data"), "prb_data_ring.data");

            var count = 1UL << countBits;
            var descSize = Size("prb_desc");
            var infoSize = Size("printk_info");
            if (descSize is 0 or > 4096 || infoSize is 0 or > 4096)
                throw new KvmException($"printk ring: SIZE(prb_desc) {descSize} or SIZE(printk_info) {infoSize} is not plausible");
            var descBytes = Bulk(descs, count * descSize, "printk descriptors");
            var infoBytes = Bulk(infos, count * infoSize, "printk infos");
            var dataSize = 1UL << sizeBits;
            var text = Bulk(data, dataSize, "printk text ring");

            var offState = Sum(Offset("prb_desc.state_var"), counter, "prb_desc.state_var");
            var offLpos = Offset("prb_desc.text_blk_lpos");
            var offBegin = Sum(offLpos, Offset("prb_data_blk_lpos.begin"), "prb_data_blk_lpos.begin");
            var offNext = Sum(offLpos, Offset("prb_data_blk_lpos.next"), "prb_data_blk_lpos.next");
            var offSeq = Offset("printk_info.seq");
            var offTs = Offset("printk_info.ts_nsec");
            var offTextLen = Offset("printk_info.text_len");
            // struct printk_info: u16 text_len; u8 facility; u8 flags:5, level:3; u32 caller_id. VMCOREINFO gives
            // no offset for the level byte; it is read only when caller_id sits where that layout puts it.
            var levelByte = offTextLen < infoSize && info.Offset("printk_info.caller_id") == offTextLen + 4 ? (long)(offTextLen + 3) : -1;

            var bits = _ptr * 8;
            var idMask = bits == 64 ? ~(3UL << 62) : ~(3UL << 30) & 0xffff_ffffUL;
            var result = new List<KernelLogRecord>();
            // Live blocks do not overlap, so their text fits in the ring; descriptors sharing blocks could make
            // far more of it, and are refused once they have.
            var textBudget = (long)dataSize;
            var id = tailId & idMask;
            headId &= idMask;
            for (ulong n = 0; n <= count; n++)
            {
                var index = (int)(id & (count - 1));
                var desc = descBytes.AsSpan(index * (int)descSize, (int)descSize);
                var stateVar = Field(desc, offState, _ptr, "prb_desc.state_var");
                var state = (int)(stateVar >> (bits - 2)) & 3;
                if ((stateVar & idMask) == id && state is StateCommitted or StateFinalized)
                {
                    var rec = infoBytes.AsSpan(index * (int)infoSize, (int)infoSize);
                    var begin = Field(desc, offBegin, _ptr, "prb_data_blk_lpos.begin");
                    var next = Field(desc, offNext, _ptr, "prb_data_blk_lpos.next");
                    var textLen = (int)Field(rec, offTextLen, 2, "printk_info.text_len");
                    var level = levelByte >= 0 ? (int)(Field(rec, (ulong)levelByte, 1, "printk_info level") >> 5) : -1;
                    if (BlockText(text, sizeBits, begin, next, textLen) is { } body)
                    {
                        textBudget -= body.Length;
                        if (textBudget < 0)
                            throw new KvmException($"printk ring: the descriptors' text is more than the {dataSize}-byte text ring holds: blocks overlap");
                        result.Add(new KernelLogRecord(Field(rec, offSeq, 8, "printk_info.seq"), Field(rec, offTs, 8, "printk_info.ts_nsec"), level, body));
                    }
                }
                if (id == headId)
                    return result;
                id = (id + 1) & idMask;
            }
            throw new KvmException($"printk ring: head id 0x{headId:x} not reached from tail id 0x{tailId:x} within {count} descriptors");
        }

        /// <summary>The text of a data block: [begin, next) in logical positions, wrapping to the ring's start when the
        /// block would not fit at its end; each block starts with the descriptor id (one unsigned long). Null for a
        /// block the kernel's reader would refuse too (not ascending, more than one wrap apart, unaligned, or too short
        /// for the id): its record is left out, as the kernel skips a record whose data is lost.</summary>
        private string? BlockText(byte[] ring, int sizeBits, ulong begin, ulong next, int textLen)
        {
            if ((begin & 1) != 0 && (next & 1) != 0)
                return ""; // a data-less record (an empty line, or a reservation that failed)
            var size = 1UL << sizeBits;
            var beginWrap = begin >> sizeBits;
            var nextWrap = next >> sizeBits;
            ulong start, length;
            if (beginWrap == nextWrap && begin < next)
            {
                start = begin & (size - 1);
                length = next - begin;
            }
            else if (beginWrap + 1 == nextWrap)
            {
                start = 0;
                length = next & (size - 1);
            }
            else
                return null;
            var align = (ulong)_ptr - 1;
            if ((begin & align) != 0 || (next & align) != 0 || length < (ulong)_ptr || length > size - start)
                return null;
            var available = (int)(length - (ulong)_ptr);
            return Decode(ring.AsSpan((int)start + _ptr, Math.Min(textLen, available)));
        }

        public IReadOnlyList<KernelLogRecord> ReadRecords()
        {
            var buf = Pointer(Symbol("log_buf"), "log_buf");
            var len = Word(Symbol("log_buf_len"), 4, "log_buf_len");
            var first = Word(Symbol("log_first_idx"), 4, "log_first_idx");
            var next = Word(Symbol("log_next_idx"), 4, "log_next_idx");
            var type = info.Size("printk_log") is not null ? "printk_log" : "log";
            var header = Size(type);
            var offTs = Offset($"{type}.ts_nsec");
            var offLen = Offset($"{type}.len");
            var offTextLen = Offset($"{type}.text_len");
            if (header is 0 or > 256)
                throw new KvmException($"SIZE({type}) {header} is not plausible");
            var bytes = Bulk(buf, len, "log_buf");
            if (first >= len || next >= len)
                throw new KvmException($"log_first_idx {first} or log_next_idx {next} is outside log_buf ({len} bytes)");
            // struct printk_log: u64 ts_nsec; u16 len; u16 text_len; u16 dict_len; u8 facility; u8 flags:5, level:3.
            var levelByte = offTextLen < header && offTextLen + 5 < header ? (long)(offTextLen + 5) : -1;
            var result = new List<KernelLogRecord>();
            var idx = first;
            ulong seq = 0;
            ulong consumed = 0; // from first to the end and on from 0 to next: one pass over the buffer at most
            for (ulong guard = 0; idx != next; guard++)
            {
                if (guard > len / 8 + 2 || consumed > len)
                    throw new KvmException("log_buf: the records do not lead from log_first_idx to log_next_idx");
                if (idx + header > len)
                    throw new KvmException($"log_buf: a record header at {idx} runs past the buffer's end");
                var rec = bytes.AsSpan((int)idx, (int)header);
                var recLen = Field(rec, offLen, 2, $"{type}.len");
                if (recLen == 0)
                {
                    consumed += len - idx;
                    idx = 0; // the writer wrapped: the rest of the buffer is unused
                    continue;
                }
                if (recLen < header || idx + recLen > len)
                    throw new KvmException($"log_buf: record at {idx} has length {recLen}");
                var textLen = (int)Math.Min(Field(rec, offTextLen, 2, $"{type}.text_len"), recLen - header);
                var level = levelByte >= 0 ? (int)(Field(rec, (ulong)levelByte, 1, $"{type} level") >> 5) : -1;
                result.Add(new KernelLogRecord(seq++, Field(rec, offTs, 8, $"{type}.ts_nsec"), level,
                    Decode(bytes.AsSpan((int)(idx + header), textLen))));
                idx += recLen;
                consumed += recLen;
            }
            return result;
        }

        public IReadOnlyList<KernelLogRecord> ReadPlain()
        {
            var buf = Pointer(Symbol("log_buf"), "log_buf");
            var len = Word(Symbol("log_buf_len"), 4, "log_buf_len");
            var end = Word(Symbol("log_end"), 4, "log_end");
            var logged = info.Symbol("logged_chars") is { } lc ? Word(lc, 4, "logged_chars") : len;
            var bytes = Bulk(buf, len, "log_buf");
            if (len == 0)
                return [];
            var n = Math.Min(Math.Min(logged, len), end);
            var text = new byte[n];
            for (ulong i = 0; i < n; i++)
                text[i] = bytes[(end - n + i) & (len - 1)];
            var result = new List<KernelLogRecord>();
            foreach (var line in Decode(text).Split('\n'))
            {
                if (line.Length == 0)
                    continue;
                var (level, rest) = line.Length >= 3 && line[0] == '<' && line[2] == '>' && char.IsAsciiDigit(line[1]) ? (line[1] - '0', line[3..]) : (-1, line);
                ulong ts = 0;
                // A time past what a u64 of nanoseconds holds is no kernel's: the line keeps it as text.
                if (rest.StartsWith('[') && rest.IndexOf(']', StringComparison.Ordinal) is var close and > 0
                    && decimal.TryParse(rest.AsSpan(1, close - 1).Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds)
                    && seconds < 100_000_000_000m && seconds * 1_000_000_000m is var ns && ns <= ulong.MaxValue)
                {
                    ts = (ulong)ns;
                    rest = rest[(close + 1)..].TrimStart(' ');
                }
                result.Add(new KernelLogRecord((ulong)result.Count, ts, level, rest));
            }
            return result;
        }

        private static string Decode(ReadOnlySpan<byte> text) => Encoding.UTF8.GetString(text);
    }
}
