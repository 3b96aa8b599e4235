using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using KvmTyped.Linux.Kernel;
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
    /// <summary>The most bytes read in bulk for one log: the text ring (or log_buf), its descriptors and infos together.
    /// Each buffer is allocated only after each of its pages was read, so a dump pays for no more than it holds.</summary>
    public const long MaxBufferBytes = 256L << 20;

    /// <summary>The stride of the readability probe before a bulk read: the smallest page.</summary>
    private const ulong ProbeStride = 4096;

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
        var info = kvm.VmcoreInfoData ?? throw new KvmException($"{kvm.CorePath}: no VMCOREINFO: the log buffer's layout is unknown");
        return Read(kvm, info);
    }

    /// <summary>Reads the log described by <paramref name="info"/> from <paramref name="memory"/>. The log's structs are
    /// placed by the memory when it places relocated structs (an opened image: VMCOREINFO, else BTF), else by
    /// VMCOREINFO's OFFSET and SIZE entries.</summary>
    /// <exception cref="KvmException">VMCOREINFO describes no log buffer, or the buffer is damaged or unreadable.</exception>
    internal static IReadOnlyList<KernelLogRecord> Read(IKernelMemory memory, VmcoreInfo info)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(info);
        var typed = memory as IKernelTypeOffsets ?? new VmcoreInfoOffsets(info, "the kernel");
        var reader = new Reader(new ViewMemory(memory, typed), info);
        if (info.Symbol("prb") is { } prb)
            return reader.ReadRing(prb);
        if (info.Symbol("log_first_idx") is not null)
            return reader.ReadRecords();
        if (info.Symbol("log_end") is not null)
            return reader.ReadPlain();
        throw new KvmException("VMCOREINFO names no log buffer (SYMBOL(prb), SYMBOL(log_first_idx) or SYMBOL(log_end))");
    }

    private sealed class Reader(ViewMemory memory, VmcoreInfo info)
    {
        private readonly int _ptr = memory.DataModel.PointerSize();

        private ulong Symbol(string name) => info.Symbol(name) ?? throw new KvmException($"VMCOREINFO lacks SYMBOL({name})");

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

        /// <summary>Where <paramref name="member"/> of <typeparamref name="T"/> lies, checked to end inside a struct of
        /// <paramref name="structSize"/> bytes after <paramref name="outer"/> bytes (the offset of the member holding it).</summary>
        private ulong Place<T>(string member, ulong size, ulong structSize, ulong outer = 0)
            where T : struct, IKernelView<T>
        {
            var name = T.TypeName[(T.TypeName.IndexOf(' ', StringComparison.Ordinal) + 1)..] + "." + member;
            ulong offset;
            try
            {
                offset = T.OffsetOf(memory, member);
            }
            catch (KvmException e) when (e is not KvmReadException)
            {
                throw new KvmException($"{name}: {e.Message}", e);
            }
            if (offset > ulong.MaxValue - outer || outer + offset > structSize || size > structSize - (outer + offset))
                throw new KvmException($"{name} at {outer} + {offset} lies outside its {structSize}-byte struct");
            return offset;
        }

        private ulong _bulkBytes;

        /// <summary>Reads a buffer whole. The buffers of one log together are at most <see cref="MaxBufferBytes"/>, and
        /// each is allocated only once every page of it has been found readable: a crafted header costs memory only as
        /// far as the dump holds the bytes it claims.</summary>
        private byte[] Bulk(ulong address, ulong length, string what)
        {
            if (length > (ulong)MaxBufferBytes - _bulkBytes)
                throw new KvmException($"{what}: {length} bytes is more than the {MaxBufferBytes >> 20} MiB read for the log ({_bulkBytes} read before)");
            if (length > 0 && address > ulong.MaxValue - (length - 1))
                throw new KvmException($"{what}: {length} bytes at 0x{address:x} pass the end of the address space");
            Span<byte> probe = stackalloc byte[1];
            for (var a = address; a - address < length; a = unchecked((a | (ProbeStride - 1)) + 1))
                ReadBytes(a, probe, what);
            _bulkBytes += length;
            var bytes = new byte[length];
            ReadBytes(address, bytes, what);
            memory.Add(address, bytes);
            return bytes;
        }

        public IReadOnlyList<KernelLogRecord> ReadRing(ulong prbSymbol)
        {
            var ring = printk_ringbuffer.At(memory, Pointer(prbSymbol, "prb"));
            var descRing = ring.desc_ring;
            var textRing = ring.text_data_ring;
            var countBits = descRing.count_bits;
            if (countBits > MaxCountBits)
                throw new KvmException($"printk ring: count_bits {countBits} is not plausible (at most {MaxCountBits})");
            var descs = descRing.descs.Address;
            var infos = descRing.infos.Address;
            var idMask = _ptr == 8 ? ~(3UL << 62) : ~(3UL << 30) & 0xffff_ffffUL;
            var headId = unchecked((ulong)descRing.head_id.counter) & idMask;
            var tailId = unchecked((ulong)descRing.tail_id.counter) & idMask;
            var sizeBits = textRing.size_bits;
            if (sizeBits > 28)
                throw new KvmException($"printk ring: text size_bits {sizeBits} is not plausible (at most 28)");
            var data = textRing.data;

            var count = 1UL << (int)countBits;
            var descSize = prb_desc.SizeOf(memory);
            var infoSize = printk_info.SizeOf(memory);
            if (descSize is 0 or > 4096 || infoSize is 0 or > 4096)
                throw new KvmException($"printk ring: SIZE(prb_desc) {descSize} or SIZE(printk_info) {infoSize} is not plausible");
            // Every member read below must lie inside its struct: the records are read from the buffers read in bulk.
            Place<prb_desc>("state_var", (ulong)_ptr, descSize);
            var lpos = Place<prb_desc>("text_blk_lpos", 0, descSize);
            Place<prb_data_blk_lpos>("begin", (ulong)_ptr, descSize, lpos);
            Place<prb_data_blk_lpos>("next", (ulong)_ptr, descSize, lpos);
            Place<printk_info>("seq", 8, infoSize);
            Place<printk_info>("ts_nsec", 8, infoSize);
            var textLenAt = Place<printk_info>("text_len", 2, infoSize);
            // VMCOREINFO gives no offset for the level byte between text_len and caller_id: it is read through the
            // layout every kernel since 5.10 has, where the offsets show that layout.
            var levelAt = printk_info.At(memory, 0).HasMember("caller_id") && printk_info.OffsetOf(memory, "caller_id") == textLenAt + 4
                && textLenAt + 4 <= infoSize ? textLenAt : (ulong?)null;
            Bulk(descs, count * descSize, "printk descriptors");
            Bulk(infos, count * infoSize, "printk infos");
            var dataSize = 1UL << (int)sizeBits;
            var text = Bulk(data, dataSize, "printk text ring");

            var bits = _ptr * 8;
            var result = new List<KernelLogRecord>();
            // Live blocks do not overlap, so their text fits in the ring; descriptors sharing blocks could make
            // far more of it, and are refused once they have.
            var textBudget = (long)dataSize;
            var id = tailId;
            for (ulong n = 0; n <= count; n++)
            {
                var index = id & (count - 1);
                var desc = prb_desc.At(memory, descs + index * descSize);
                var stateVar = unchecked((ulong)desc.state_var.counter);
                var state = (int)(stateVar >> (bits - 2)) & 3;
                if ((stateVar & idMask) == id && state is StateCommitted or StateFinalized)
                {
                    var rec = printk_info.At(memory, infos + index * infoSize);
                    var blk = desc.text_blk_lpos;
                    var level = levelAt is { } at ? printk_info_level_bytes.At(memory, rec.Address + at).level : -1;
                    if (BlockText(text, (int)sizeBits, blk.begin, blk.next, rec.text_len) is { } body)
                    {
                        textBudget -= body.Length;
                        if (textBudget < 0)
                            throw new KvmException($"printk ring: the descriptors' text is more than the {dataSize}-byte text ring holds: blocks overlap");
                        result.Add(new KernelLogRecord(rec.seq, rec.ts_nsec, level, body));
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
            var textAt = KernelTypes.OffsetOf<prb_data_block>(memory, "data");
            if ((begin & align) != 0 || (next & align) != 0 || length < textAt || length > size - start)
                return null;
            var available = (int)(length - textAt);
            return Decode(ring.AsSpan((int)(start + textAt), Math.Min(textLen, available)));
        }

        public IReadOnlyList<KernelLogRecord> ReadRecords()
        {
            var buf = Pointer(Symbol("log_buf"), "log_buf");
            var len = Word(Symbol("log_buf_len"), 4, "log_buf_len");
            var first = Word(Symbol("log_first_idx"), 4, "log_first_idx");
            var next = Word(Symbol("log_next_idx"), 4, "log_next_idx");
            var header = printk_log.SizeOf(memory);
            if (header is 0 or > 256)
                throw new KvmException($"SIZE(printk_log) {header} is not plausible");
            Place<printk_log>("ts_nsec", 8, header);
            Place<printk_log>("len", 2, header);
            var textLenAt = Place<printk_log>("text_len", 2, header);
            // The level byte sits 5 bytes after text_len (u16 dict_len, u8 facility, u8 flags:5 level:3); VMCOREINFO
            // gives no offset for it.
            var levelAt = textLenAt + 6 <= header ? textLenAt : (ulong?)null;
            var bytes = Bulk(buf, len, "log_buf");
            if (first >= len || next >= len)
                throw new KvmException($"log_first_idx {first} or log_next_idx {next} is outside log_buf ({len} bytes)");
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
                var rec = printk_log.At(memory, buf + idx);
                var recLen = (ulong)rec.len;
                if (recLen == 0)
                {
                    consumed += len - idx;
                    idx = 0; // the writer wrapped: the rest of the buffer is unused
                    continue;
                }
                if (recLen < header || idx + recLen > len)
                    throw new KvmException($"log_buf: record at {idx} has length {recLen}");
                var textLen = (int)Math.Min(rec.text_len, recLen - header);
                var level = levelAt is { } at ? printk_log_level_bytes.At(memory, rec.Address + at).level : -1;
                result.Add(new KernelLogRecord(seq++, rec.ts_nsec, level, Decode(bytes.AsSpan((int)(idx + header), textLen))));
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
