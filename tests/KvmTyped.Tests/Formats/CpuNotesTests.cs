using System.Buffers.Binary;
using System.Text;
using KvmTyped.Formats;
using KvmTyped.Formats.Elf;
using KvmTyped.Formats.Kdump;
using KvmTyped.IO;
using KvmTyped.TestSupport;

namespace KvmTyped.Tests.Formats;

public class CpuNotesTests
{
    /// <summary>An ELF note: header, name and descriptor, each padded to 4 bytes.</summary>
    internal static byte[] Note(string name, uint type, byte[] desc)
    {
        var n = Encoding.ASCII.GetBytes(name + "\0");
        var bytes = new byte[12 + Align(n.Length) + Align(desc.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)n.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), (uint)desc.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), type);
        n.CopyTo(bytes, 12);
        desc.CopyTo(bytes, 12 + Align(n.Length));
        return bytes;
    }

    private static int Align(int n) => (n + 3) & ~3;

    /// <summary>An x86-64 elf_prstatus: pid at 32, register i (user_regs_struct order) = 0x1000 + i.</summary>
    internal static byte[] PrStatus64(int pid, ulong? ip = null)
    {
        var d = new byte[PrStatus.X86_64Size];
        BinaryPrimitives.WriteInt16LittleEndian(d.AsSpan(12), 11);
        BinaryPrimitives.WriteInt32LittleEndian(d.AsSpan(32), pid);
        for (var i = 0; i < 27; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(112 + 8 * i), 0x1000UL + (ulong)i);
        if (ip is { } v)
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(112 + 8 * 16), v);
        return d;
    }

    /// <summary>An i386 elf_prstatus: pid at 24, register i = 0x2000 + i.</summary>
    internal static byte[] PrStatus32(int pid)
    {
        var d = new byte[PrStatus.I386Size];
        BinaryPrimitives.WriteInt32LittleEndian(d.AsSpan(24), pid);
        for (var i = 0; i < 17; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(72 + 4 * i), 0x2000U + (uint)i);
        return d;
    }

    [Fact]
    public void X86_64_registers_are_read_in_user_regs_struct_order()
    {
        var notes = CpuNotes.Parse([.. Note("CORE", 1, PrStatus64(7)), .. Note("CORE", 1, PrStatus64(0))], false, "t");
        Assert.False(notes.FromQemu);
        Assert.Equal([7, 0], notes.Notes.Select(n => n.Pid));
        var n = notes.Notes[0];
        Assert.Equal(PrStatusLayout.X86_64, n.Layout);
        Assert.Equal(11, n.Signal);
        Assert.Equal(0x1000UL, n["r15"]);
        Assert.Equal(0x1000UL + 4, n["bp"]);
        Assert.Equal(0x1000UL + 16, n["ip"]);
        Assert.Equal(0x1000UL + 17, n["cs"]);
        Assert.Equal(0x1000UL + 19, n["sp"]);
        Assert.Equal(0x1000UL + 26, n["gs"]);
        Assert.Equal(1, notes.Notes[1].Index);
        Assert.Throws<KeyNotFoundException>(() => n["eip"]);
    }

    [Fact]
    public void I386_registers_and_qemu_notes_are_recognised()
    {
        var area = Note("CORE", 1, PrStatus32(1)).Concat(Note("QEMU", 0, new byte[16])).Concat(Note("CORE", 1, PrStatus32(2))).ToArray();
        var notes = CpuNotes.Parse(area, false, "t");
        Assert.True(notes.FromQemu);
        Assert.Equal([1, 2], notes.Notes.Select(n => n.Pid));
        var n = notes.Notes[0];
        Assert.Equal(PrStatusLayout.I386, n.Layout);
        Assert.Equal(0x2000UL, n["bx"]);
        Assert.Equal(0x2000UL + 5, n["bp"]);
        Assert.Equal(0x2000UL + 12, n["ip"]);
        Assert.Equal(0x2000UL + 15, n["sp"]);
        Assert.Equal(17, n.Names.Count);
    }

    /// <summary>An arm64 elf_prstatus: pid at 32, x0..x30, sp, pc, pstate = 0x3000 + i.</summary>
    internal static byte[] PrStatusArm64(int pid)
    {
        var d = new byte[PrStatus.Arm64Size];
        BinaryPrimitives.WriteInt32LittleEndian(d.AsSpan(32), pid);
        for (var i = 0; i < 34; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(112 + 8 * i), 0x3000UL + (ulong)i);
        return d;
    }

    [Fact]
    public void Arm64_registers_are_read_in_user_pt_regs_order_and_qemu_is_told_by_its_fp_notes()
    {
        var kernel = CpuNotes.Parse([.. Note("CORE", 1, PrStatusArm64(1)), .. Note("CORE", 1, PrStatusArm64(0))], false, "t");
        Assert.False(kernel.FromQemu);
        var n = kernel.Notes[0];
        Assert.Equal(PrStatusLayout.Arm64, n.Layout);
        Assert.Equal(34, n.Names.Count);
        Assert.Equal(0x3000UL, n["x0"]);
        Assert.Equal(0x3000UL + 29, n["x29"]);
        Assert.Equal(0x3000UL + 30, n["x30"]);
        Assert.Equal(0x3000UL + 31, n["sp"]);
        Assert.Equal(0x3000UL + 32, n["pc"]);
        Assert.Equal(0x3000UL + 33, n["pstate"]);
        // QEMU writes NT_PRFPREG (and an SVE note) beside each vCPU's NT_PRSTATUS and no "QEMU" note on arm64.
        var qemu = CpuNotes.Parse([.. Note("CORE", 1, PrStatusArm64(1)), .. Note("CORE", 2, new byte[528]), .. Note("LINUX", 0x405, new byte[16]), .. Note("CORE", 1, PrStatusArm64(2))], false, "t");
        Assert.True(qemu.FromQemu);
        Assert.Equal([1, 2], qemu.Notes.Select(x => x.Pid));
    }

    [Fact]
    public void Other_notes_and_unknown_layouts_are_skipped_and_counted()
    {
        var area = Note("VMCOREINFO", 0, "OSRELEASE=6.1\n"u8.ToArray())
            .Concat(Note("CORE", 1, new byte[376])) // a riscv64 elf_prstatus
            .Concat(Note("CORE", 2, PrStatus64(5)))  // NT_PRFPREG, not registers of interest
            .Concat(Note("CORE", 1, PrStatus64(3))).ToArray();
        var notes = CpuNotes.Parse(area, false, "t");
        Assert.Equal(1, notes.Skipped);
        Assert.Equal([3], notes.Notes.Select(n => n.Pid));
        Assert.Equal(1, notes.Notes[0].Index); // the second NT_PRSTATUS
    }

    [Fact]
    public void A_damaged_note_ends_the_area_keeping_the_notes_before_it()
    {
        var good = Note("CORE", 1, PrStatus64(9));
        var bad = Note("CORE", 1, PrStatus64(10));
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(4), 0x7fff_0000); // descsz past the area
        var notes = CpuNotes.Parse([.. good, .. bad], false, "t");
        Assert.Equal([9], notes.Notes.Select(n => n.Pid));
        Assert.Empty(CpuNotes.Parse(new byte[40], false, "t").Notes);
    }

    [Fact]
    public void More_notes_than_the_cap_are_refused()
    {
        var one = Note("CORE", 1, PrStatus64(1));
        var area = new byte[one.Length * (CpuNotes.MaxNotes + 1)];
        for (var i = 0; i <= CpuNotes.MaxNotes; i++)
            one.CopyTo(area, i * one.Length);
        var e = Assert.Throws<KvmFormatException>(() => CpuNotes.Parse(area, false, "cores"));
        Assert.Contains($"more than {CpuNotes.MaxNotes} NT_PRSTATUS notes", e.Message, StringComparison.Ordinal);
        Assert.Contains("cores", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_real_kdump_elf_core_holds_the_panicking_and_the_idle_cpu()
    {
        using var file = RandomAccessFile.Open(Fixtures.Get("amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz"), writable: false);
        using var core = new ElfCoreMemory(ElfImage.Parse(file));
        var notes = CpuNotes.Read(core);
        Assert.False(notes.FromQemu);
        // init (pid 1) panicked on CPU 0; CPU 1 was idle. The panic registers were taken in __crash_kexec: KASLR
        // 0x1bc00000 moves its link address 0xffffffff811740a0 to 0xffffffff9cd740a0.
        Assert.Equal([1, 0], notes.Notes.Select(n => n.Pid));
        Assert.InRange(notes.Notes[0]["ip"], 0xffffffff9cd740a0UL, 0xffffffff9cd740a0UL + 0x130);
        Assert.Equal(0x10UL, notes.Notes[0]["cs"]);
    }

    [Fact]
    public void A_real_i386_kdump_file_has_its_notes_in_the_note_area()
    {
        using var kdump = KdumpFile.Open(Fixtures.Get("i386/pae-kdump-kaslr/vmcore.mdf-zlib-d31.kdump"));
        var notes = CpuNotes.Read(kdump);
        Assert.Equal([0, 1], notes.Notes.Select(n => n.Pid));
        Assert.All(notes.Notes, n => Assert.Equal(PrStatusLayout.I386, n.Layout));
        Assert.Equal(0x60UL, notes.Notes[1]["cs"]);
    }

    [Fact]
    public void A_qemu_flattened_kdump_numbers_its_vcpus_from_one()
    {
        using var kdump = KdumpFile.Open(Fixtures.Get("amd64/panic-kaslr/dump.kdump-zlib"));
        var notes = CpuNotes.Read(kdump);
        Assert.True(notes.FromQemu);
        Assert.Equal([1, 2], notes.Notes.Select(n => n.Pid));
    }
}
