using System.Text;

namespace KvmTyped.Tests.TestSupport;

/// <summary>Synthetic kernels and cores: a page of "kernel data" with a banner, in each data model.</summary>
internal static class Images
{
    public const string Banner = "Linux version 9.9.9-test (synthetic) #1";
    public const ulong Lp64Text = 0xffffffff81000000;
    public const ulong Lp64Phys = 0x1000000;
    public const ulong Ilp32Text = 0xc1000000;
    public const ulong Ilp32Phys = 0x1000000;

    public static byte[] Page(int size = 0x2000)
    {
        var data = new byte[size];
        for (var i = 0; i < data.Length; i++)
            data[i] = (byte)(i * 7 + 3);
        var b = Encoding.ASCII.GetBytes(Banner + "\0");
        b.CopyTo(data, 0x100);
        return data;
    }

    public static ElfWriter Lp64Core(ushort machine = 62) =>
        ElfWriter.Core64(machine).AddVmcoreInfo("OSRELEASE=9.9.9-test\nPAGESIZE=4096\n").AddLoad(Lp64Phys, Lp64Text, Page());

    public static ElfWriter Ilp32Core() =>
        ElfWriter.Core32().AddVmcoreInfo("OSRELEASE=9.9.9-test\nPAGESIZE=4096\n").AddLoad(Ilp32Phys, Ilp32Text, Page());

    /// <summary>QEMU's way of describing an i386 guest: an ELF64 container with e_machine EM_386.</summary>
    public static ElfWriter QemuI386Core() =>
        new ElfWriter { Is64 = true, Machine = 3, Type = 4 }.AddVmcoreInfo("OSRELEASE=9.9.9-test\n").AddLoad(Ilp32Phys, Ilp32Phys, Page());

    public static ElfWriter Lp64Kernel() =>
        ElfWriter.Kernel64().AddSymbol("_stext", Lp64Text, 0x12).AddSymbol("linux_banner", Lp64Text + 0x100).AddSymbol("init_task", Lp64Text + 0x400).AddSymbol("local_thing", Lp64Text + 0x800, 0x01);

    public static ElfWriter Ilp32Kernel() =>
        ElfWriter.Kernel32().AddSymbol("_stext", Ilp32Text, 0x12).AddSymbol("linux_banner", Ilp32Text + 0x100).AddSymbol("init_task", Ilp32Text + 0x400);

    public static string Lp64Map => $"{Lp64Text:x16} T _stext\n{Lp64Text + 0x100:x16} D linux_banner\n{Lp64Text + 0x400:x16} D init_task\n";

    public static string Ilp32Map => $"{Ilp32Text:x8} T _stext\n{Ilp32Text + 0x100:x8} D linux_banner\n{Ilp32Text + 0x400:x8} D init_task\n";
}
