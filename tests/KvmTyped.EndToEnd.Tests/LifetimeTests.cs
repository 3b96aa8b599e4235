using KvmTyped.TestSupport;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace KvmTyped.EndToEnd.Tests;

/// <summary>What an open image holds, and for how long.</summary>
public class LifetimeTests
{
    [Fact]
    public void The_kernels_BTF_is_collectable_once_the_image_is_closed()
    {
        var (btf, kvm) = OpenAndLoadBtf();
        kvm.Close();
        for (var i = 0; i < 5 && IsAlive(btf); i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(IsAlive(btf), "the closed image still holds its BTF");
        Assert.Throws<KvmClosedException>(() => kvm.Btf);
        GC.KeepAlive(kvm);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (WeakReference<KernelBtf>, Kvm) OpenAndLoadBtf()
    {
        var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(Dumps.NoKaslrElf));
        var btf = kvm.Btf;
        Assert.True(btf.Types.Count > 1000);
        return (new WeakReference<KernelBtf>(btf), kvm);
    }

    // Out of line: an unoptimized caller would keep the target alive in the hidden local of `out _`.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool IsAlive(WeakReference<KernelBtf> weak) => weak.TryGetTarget(out _);

    [Fact]
    public void A_page_directory_written_through_O_RDWR_is_what_the_next_translation_walks()
    {
        var dir = Directory.CreateTempSubdirectory("kvmtyped-e2e-");
        try
        {
            var copy = Path.Combine(dir.FullName, "vmcore");
            File.Copy(Fixtures.Get(Dumps.I386KdumpElf), copy);
            using var kvm = Kvm.Open(Fixtures.Get(Dumps.I386Map), copy, flags: KvmOpenFlags.ReadWrite);
            Assert.True(kvm.IsPae);

            // Low memory translates by arithmetic, as crash does; vmalloc space is walked. PAE: the PDPT at the root
            // names a page directory per GiB, whose entries name page tables of 512 eight-byte entries.
            var entry = new byte[8];
            kvm.ReadVirtual(kvm.SymbolAddress("high_memory"), entry.AsSpan(0, 4));
            var vmallocFrom = BinaryPrimitives.ReadUInt32LittleEndian(entry) + (8ul << 20);
            kvm.ReadPhysical(kvm.RootTable!.Value + (vmallocFrom >> 30) * 8, entry);
            var directory = BinaryPrimitives.ReadUInt64LittleEndian(entry) & FrameMask;
            var table = new byte[4096];
            for (var pde = (vmallocFrom >> 21) & 511; pde < 512; pde++)
            {
                kvm.ReadPhysical(directory + pde * 8, entry);
                var e = BinaryPrimitives.ReadUInt64LittleEndian(entry);
                if ((e & 1) == 0 || (e & 0x80) != 0 || !kvm.TryReadPhysical(e & FrameMask, table, out _))
                    continue;
                var present = Enumerable.Range(0, 512).Where(i => (Pte(table, i) & 1) != 0).ToList();
                var (a, b) = (present.FirstOrDefault(-1), present.FirstOrDefault(i => (Pte(table, i) & FrameMask) != (Pte(table, present[0]) & FrameMask), -1));
                if (a < 0 || b < 0)
                    continue;
                var v = (vmallocFrom & ~((1ul << 30) - 1)) + (pde << 21) + ((ulong)a << 12) + 0x123;
                Assert.Equal((Pte(table, a) & FrameMask) + 0x123, Translate(kvm, v));

                // The walk above filled the cache; a write to the page table must be seen by the next one.
                kvm.WritePhysical((e & FrameMask) + (ulong)a * 8, table.AsSpan(b * 8, 8));
                Assert.Equal((Pte(table, b) & FrameMask) + 0x123, Translate(kvm, v));
                return;
            }
            Assert.Fail($"no page table with two mapped pages above 0x{vmallocFrom:x}");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private const ulong FrameMask = 0x000f_ffff_ffff_f000;

    private static ulong Pte(byte[] table, int index) => BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(index * 8));

    private static ulong Translate(Kvm kvm, ulong address) =>
        kvm.TryTranslate(address, out var physical, out var failure) ? physical : throw new Xunit.Sdk.XunitException(failure);
}
