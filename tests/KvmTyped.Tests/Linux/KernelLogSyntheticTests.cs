using System.Text;
using KvmTyped.Linux;
using KvmTyped.Formats;

namespace KvmTyped.Tests.Linux;

public class KernelLogSyntheticTests
{
    private const ulong Base = 0x10000;
    private const ulong PrbSymbol = 0x10000, Prb = 0x10100, Descs = 0x10400, Infos = 0x10800, Data = 0x11000;

    private const string RingInfo = PrintkRingInfo.Debian61Amd64;

    private static VmcoreInfo Info(string text) => VmcoreInfo.Parse(Encoding.ASCII.GetBytes(text));

    /// <summary>A ring of 4 descriptors (count_bits 2) and 64 text bytes (size_bits 6).</summary>
    private static FlatKernelMemory Ring(ulong tailId, ulong headId)
    {
        var m = new FlatKernelMemory(DataModel.LP64, Base, 0x2000);
        m.U64(PrbSymbol, Prb);
        m.U32(Prb + 0, 2);
        m.U64(Prb + 8, Descs);
        m.U64(Prb + 16, Infos);
        m.U64(Prb + 24, headId);
        m.U64(Prb + 32, tailId);
        m.U32(Prb + 48, 6);
        m.U64(Prb + 56, Data);
        return m;
    }

    private static void Record(FlatKernelMemory m, ulong id, int state, ulong seq, ulong ts, int level, ulong begin, ulong next, string text)
    {
        var index = id & 3;
        var desc = Descs + index * 24;
        m.U64(desc, ((ulong)state << 62) | id);
        m.U64(desc + 8, begin);
        m.U64(desc + 16, next);
        var info = Infos + index * 88;
        m.U64(info, seq);
        m.U64(info + 8, ts);
        m.U16(info + 16, (ushort)Encoding.UTF8.GetByteCount(text));
        m.U8(info + 18, 0);
        m.U8(info + 19, (byte)(level << 5));
        if ((begin & 1) == 0)
        {
            // The block sits at begin's index, or at the ring's start when it wrapped; it starts with the id.
            var at = (begin >> 6) == (next >> 6) ? begin & 63 : 0;
            m.U64(Data + at, id);
            m.Text(Data + at + 8, text);
        }
    }

    [Fact]
    public void Ring_records_are_read_from_tail_to_head_with_wrapped_blocks_and_dataless_lines()
    {
        var m = Ring(tailId: 5, headId: 8);
        Record(m, 5, state: 2, seq: 40, ts: 1_500_000_000, level: 6, begin: 64 + 24, next: 64 + 48, "first record"); // index 24..48
        Record(m, 6, state: 1, seq: 41, ts: 2_000_001_000, level: 4, begin: 64 + 48, next: 128 + 24, "wrapped\nlines"); // 24 bytes do not fit at 48: at 0
        Record(m, 7, state: 2, seq: 42, ts: 2_000_002_000, level: 3, begin: 1, next: 1, ""); // data-less (an empty line)
        Record(m, 8, state: 0, seq: 43, ts: 9, level: 0, begin: 3, next: 3, "reserved"); // still being written: skipped
        var log = KernelLog.Read(m, Info(RingInfo));
        Assert.Equal(
            [new KernelLogRecord(40, 1_500_000_000, 6, "first record"), new KernelLogRecord(41, 2_000_001_000, 4, "wrapped\nlines"), new KernelLogRecord(42, 2_000_002_000, 3, "")],
            log);
        Assert.Equal("[    1.500000] first record", log[0].Format());
        Assert.Equal("[    2.000001] wrapped\n[    2.000001] lines", log[1].Format());
    }

    [Fact]
    public void Ring_descriptor_of_another_id_or_reusable_state_is_skipped()
    {
        var m = Ring(tailId: 1, headId: 2);
        Record(m, 1, state: 3, seq: 0, ts: 0, level: 0, begin: 0, next: 20, "reusable"); // reusable: not shown
        Record(m, 2, state: 2, seq: 1, ts: 5000, level: 6, begin: 24, next: 44, "kept");
        m.U64(Descs + 2 * 24, (2UL << 62) | 6); // index 2 now says id 6: a newer lap overwrote it
        Assert.Empty(KernelLog.Read(m, Info(RingInfo)));
    }

    [Fact]
    public void Id_wraps_within_the_word()
    {
        var top = (1UL << 62) - 1; // the largest id: the next is 0
        var m = Ring(tailId: top, headId: 0);
        Record(m, top, state: 2, seq: 7, ts: 1, level: 6, begin: 0, next: 16, "last");
        Record(m, 0, state: 2, seq: 8, ts: 2, level: 6, begin: 16, next: 32, "first");
        Assert.Equal(["last", "first"], KernelLog.Read(m, Info(RingInfo)).Select(r => r.Text));
    }

    [Fact]
    public void Hostile_ring_values_are_refused_not_followed()
    {
        var m = Ring(tailId: 5, headId: 5_000_000);
        var e = Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RingInfo)));
        Assert.Contains("not reached", e.Message, StringComparison.Ordinal);
        m = Ring(tailId: 0, headId: 0);
        m.U32(Prb, 40);
        Assert.Contains("count_bits 40", Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RingInfo))).Message, StringComparison.Ordinal);
        m = Ring(tailId: 0, headId: 0);
        m.U32(Prb + 48, 31);
        Assert.Contains("size_bits 31", Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RingInfo))).Message, StringComparison.Ordinal);
        m = Ring(tailId: 0, headId: 0);
        m.U64(Prb + 8, 0xdead0000);
        var read = Assert.Throws<KvmReadException>(() => KernelLog.Read(m, Info(RingInfo)));
        Assert.Contains("printk descriptors at 0xdead0000", read.Message, StringComparison.Ordinal);
        Assert.Contains("prb_desc_ring has no member 'infos'", Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RingInfo.Replace("OFFSET(prb_desc_ring.infos)=16\n", "", StringComparison.Ordinal)))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_block_overrunning_its_length_is_cut_to_the_block()
    {
        var m = Ring(tailId: 1, headId: 1);
        Record(m, 1, state: 2, seq: 0, ts: 0, level: 6, begin: 0, next: 16, "abcdefghij"); // text_len 10 in an 8-byte block
        Assert.Equal("abcdefgh", Assert.Single(KernelLog.Read(m, Info(RingInfo))).Text);
    }

    [Fact]
    public void Blocks_the_kernel_would_refuse_leave_their_record_out()
    {
        var m = Ring(tailId: 1, headId: 4);
        Record(m, 2, state: 2, seq: 11, ts: 0, level: 6, begin: 40, next: 16, "x"); // next before begin in one wrap
        Record(m, 3, state: 2, seq: 12, ts: 0, level: 6, begin: 16, next: 200, "y"); // three wraps apart
        Record(m, 4, state: 2, seq: 13, ts: 0, level: 6, begin: 20, next: 36, "z"); // not aligned to the id's size
        Record(m, 1, state: 2, seq: 10, ts: 0, level: 6, begin: 0, next: 16, "kept"); // written last: the others' text sits at 0 too
        Assert.Equal(["kept"], KernelLog.Read(m, Info(RingInfo)).Select(r => r.Text));
    }

    [Fact]
    public void Next_before_begin_as_reported_is_skipped_not_thrown()
    {
        // The reported shape: begin 0x108, next 0x10 in a 4 KiB ring (same wrap, so next - begin underflows).
        var m = new FlatKernelMemory(DataModel.LP64, Base, 0x3000);
        m.U64(PrbSymbol, Prb);
        m.U32(Prb + 0, 0);
        m.U64(Prb + 8, Descs);
        m.U64(Prb + 16, Infos);
        m.U32(Prb + 48, 12);
        m.U64(Prb + 56, Data);
        m.U64(Descs, 2UL << 62);
        m.U64(Descs + 8, 0x108);
        m.U64(Descs + 16, 0x10);
        m.U16(Infos + 16, 5);
        Assert.Empty(KernelLog.Read(m, Info(RingInfo)));
    }

    [Fact]
    public void Offsets_past_the_word_are_refused_naming_the_key()
    {
        var m = Ring(tailId: 1, headId: 1);
        Record(m, 1, state: 2, seq: 0, ts: 0, level: 6, begin: 0, next: 16, "a");
        var e = Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RingInfo.Replace("OFFSET(prb_desc.state_var)=0", "OFFSET(prb_desc.state_var)=18446744073709551615", StringComparison.Ordinal))));
        Assert.Contains("prb_desc.state_var", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RingInfo.Replace("OFFSET(prb_desc.text_blk_lpos)=8", "OFFSET(prb_desc.text_blk_lpos)=18446744073709551608", StringComparison.Ordinal))));
        Assert.Contains("prb_desc.text_blk_lpos", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RingInfo.Replace("OFFSET(printk_info.seq)=0", "OFFSET(printk_info.seq)=18446744073709551612", StringComparison.Ordinal))));
        Assert.Contains("printk_info.seq", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RingInfo.Replace("OFFSET(printk_info.text_len)=16", "OFFSET(printk_info.text_len)=18446744073709551615", StringComparison.Ordinal))));
        Assert.Contains("printk_info.text_len", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Descriptors_sharing_one_block_cannot_multiply_the_text()
    {
        var m = Ring(tailId: 1, headId: 4);
        var text = new string('x', 40);
        for (ulong id = 1; id <= 4; id++)
            Record(m, id, state: 2, seq: id, ts: 0, level: 6, begin: 0, next: 48, text); // 4 × 40 bytes from one 64-byte ring
        Assert.Contains("blocks overlap", Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RingInfo))).Message, StringComparison.Ordinal);
    }

    // 3.5–5.9: struct printk_log records in log_buf, 8-byte aligned, a zero length marking the wrap.
    private const string RecordsInfo = """
        SYMBOL(log_buf)=10000
        SYMBOL(log_buf_len)=10008
        SYMBOL(log_first_idx)=1000c
        SYMBOL(log_next_idx)=10010
        SIZE(printk_log)=16
        OFFSET(printk_log.ts_nsec)=0
        OFFSET(printk_log.len)=8
        OFFSET(printk_log.text_len)=10

        """;

    private static void LogRecord(FlatKernelMemory m, ulong at, ulong ts, int level, string text, ushort len)
    {
        m.U64(at, ts);
        m.U16(at + 8, len);
        m.U16(at + 10, (ushort)text.Length);
        m.U8(at + 15, (byte)(level << 5));
        m.Text(at + 16, text);
    }

    [Fact]
    public void Record_log_buf_is_read_from_first_to_next_across_the_wrap()
    {
        const ulong Buf = 0x10100;
        var m = new FlatKernelMemory(DataModel.LP64, Base, 0x1000);
        m.U64(0x10000, Buf);
        m.U32(0x10008, 128);
        m.U32(0x1000c, 80);
        m.U32(0x10010, 56);
        LogRecord(m, Buf + 80, 100_000, 6, "before wrap", 32);
        m.U16(Buf + 112 + 8, 0); // the writer wrapped here
        LogRecord(m, Buf + 0, 200_000, 4, "after", 24);
        LogRecord(m, Buf + 24, 3_000_000_000, 2, "third one", 32);
        var log = KernelLog.Read(m, Info(RecordsInfo));
        Assert.Equal([new KernelLogRecord(0, 100_000, 6, "before wrap"), new KernelLogRecord(1, 200_000, 4, "after"), new KernelLogRecord(2, 3_000_000_000, 2, "third one")], log);
        Assert.Equal("[    0.000100] before wrap", log[0].Format());
    }

    [Fact]
    public void Record_log_buf_loops_and_bad_lengths_are_refused()
    {
        const ulong Buf = 0x10100;
        var m = new FlatKernelMemory(DataModel.LP64, Base, 0x1000);
        m.U64(0x10000, Buf);
        m.U32(0x10008, 128);
        m.U32(0x1000c, 0);
        m.U32(0x10010, 8); // never reached: every record is 16 bytes long
        for (ulong at = 0; at < 112; at += 16)
            LogRecord(m, Buf + at, 0, 6, "", 16);
        m.U16(Buf + 112 + 8, 0); // wraps back to 0
        Assert.Contains("do not lead", Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RecordsInfo))).Message, StringComparison.Ordinal);
        LogRecord(m, Buf, 0, 6, "x", 4000);
        Assert.Contains("has length 4000", Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RecordsInfo))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plain_log_buf_before_3_5_is_split_into_lines_with_levels_and_times()
    {
        const ulong Buf = 0x10100;
        var m = new FlatKernelMemory(DataModel.ILP32, Base, 0x1000);
        var text = "<5>[    0.000000] Linux version 3.2.0\n<4>[    1.250000] second line\n<6>no time\n";
        m.Ptr(0x10000, Buf);
        m.U32(0x10008, 128);
        m.U32(0x1000c, (uint)text.Length);
        m.U32(0x10010, (uint)text.Length);
        m.Text(Buf, text);
        var info = Info("SYMBOL(log_buf)=10000\nSYMBOL(log_buf_len)=10008\nSYMBOL(log_end)=1000c\nSYMBOL(logged_chars)=10010\n");
        Assert.Equal(
            [new KernelLogRecord(0, 0, 5, "Linux version 3.2.0"), new KernelLogRecord(1, 1_250_000_000, 4, "second line"), new KernelLogRecord(2, 0, 6, "no time")],
            KernelLog.Read(m, info));
    }

    [Fact]
    public void Plain_log_buf_times_past_a_u64_of_nanoseconds_stay_text()
    {
        const ulong Buf = 0x10100;
        var m = new FlatKernelMemory(DataModel.LP64, Base, 0x1000);
        var text = "<6>[99999999999.000000] hello\n<6>[18446744073.709551] last\n<6>[18446744073.709552] over\n<6>[99999999999999999999999999999999] big\n";
        m.U64(0x10000, Buf);
        m.U32(0x10008, 256);
        m.U32(0x1000c, (uint)text.Length);
        m.Text(Buf, text);
        var info = Info("SYMBOL(log_buf)=10000\nSYMBOL(log_buf_len)=10008\nSYMBOL(log_end)=1000c\n");
        Assert.Equal(
            [new KernelLogRecord(0, 0, 6, "[99999999999.000000] hello"), new KernelLogRecord(1, 18_446_744_073_709_551_000, 6, "last"),
             new KernelLogRecord(2, 0, 6, "[18446744073.709552] over"), new KernelLogRecord(3, 0, 6, "[99999999999999999999999999999999] big")],
            KernelLog.Read(m, info));
    }

    [Fact]
    public void Record_log_buf_lapping_one_long_record_is_refused()
    {
        // One record filling the buffer, then the wrap mark: from 0 the walk would find it again and again.
        const ulong Buf = 0x10100;
        var m = new FlatKernelMemory(DataModel.LP64, Base, 0x1000);
        m.U64(0x10000, Buf);
        m.U32(0x10008, 128);
        m.U32(0x1000c, 0);
        m.U32(0x10010, 120);
        LogRecord(m, Buf, 0, 6, "x", 112);
        m.U16(Buf + 112 + 8, 0);
        m.U32(0x10010, 8); // never reached
        Assert.Contains("do not lead", Assert.Throws<KvmException>(() => KernelLog.Read(m, Info(RecordsInfo))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void No_log_buffer_in_vmcoreinfo_is_an_error()
    {
        var m = new FlatKernelMemory(DataModel.LP64, Base, 16);
        Assert.Contains("names no log buffer", Assert.Throws<KvmException>(() => KernelLog.Read(m, Info("OSRELEASE=6.1\n"))).Message, StringComparison.Ordinal);
    }
}
