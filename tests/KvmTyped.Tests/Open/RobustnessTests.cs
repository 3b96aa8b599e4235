using KvmTyped.Btf;
using KvmTyped.Open;
using KvmTyped.Formats;
using KvmTyped.Tests.Btf;
using KvmTyped.Tools;
using KvmTyped.Translation;
using static KvmTyped.Compat.Libkvm;

namespace KvmTyped.Tests.Open;

public class RobustnessTests
{
    [Fact]
    public async Task Closing_while_other_threads_read_never_crashes_and_reads_fail_cleanly()
    {
        using var d = new TempDir();
        var map = d.Text("map", Images.Lp64Map);
        var core = d.File("core", Images.Lp64Core().Build());
        for (var round = 0; round < 100; round++)
        {
            var kvm = Kvm.Open(map, core);
            var physical = kvm.Physical;
            using var go = new ManualResetEventSlim();
            var unexpected = 0;
            var readers = Enumerable.Range(0, 2).Select(n => Task.Run(() =>
            {
                var buf = new byte[4096];
                go.Wait();
                for (var i = 0; i < 2000; i++)
                {
                    try
                    {
                        physical.TryRead(Images.Lp64Phys, buf, out _);
                        kvm.TryReadVirtual(Images.Lp64Text, buf, out _);
                    }
                    catch (KvmClosedException)
                    {
                    }
                    catch (Exception)
                    {
                        Interlocked.Increment(ref unexpected);
                    }
                }
            })).ToArray();
            go.Set();
            Thread.SpinWait(round * 50);
            kvm.Close();
            await Task.WhenAll(readers);
            Assert.Equal(0, unexpected);
            Assert.False(physical.TryRead(Images.Lp64Phys, new byte[8], out var failure));
            Assert.Contains("closed", failure);
        }
    }

    [Fact]
    public void Empty_or_directory_paths_are_open_errors_and_the_facade_returns_null()
    {
        using var d = new TempDir();
        var core = d.File("core", Images.Lp64Core().Build());
        Assert.Contains("No such file", Assert.Throws<KvmOpenException>(() => Kvm.Open("", core)).Message);
        Assert.Contains("Is a directory", Assert.Throws<KvmOpenException>(() => Kvm.Open(d.Text("map", Images.Lp64Map), d.Path)).Message);
        Assert.Null(kvm_open("", core, null, O_RDONLY, null));
    }

    [Fact]
    public void Segments_beyond_52_bit_physical_addresses_are_format_errors()
    {
        using var d = new TempDir();
        var w = ElfWriter.Core64();
        w.Segments.Add(new ElfWriter.Segment(0xffffffffffffe000, 0, new byte[16], MemSize: 0x1fff));
        Assert.Contains("2^52", Assert.Throws<KvmFormatException>(() => Kvm.Open(d.Text("map", Images.Lp64Map), d.File("core", w.Build()))).Message);
    }

    [Fact]
    public void A_write_across_a_missing_section_changes_nothing()
    {
        using var d = new TempDir();
        var page = Images.Page();
        // The core's segment ends at Lp64Phys + 0x2000; a missing section starts right there.
        var reference = new SectionFileReference("gone.sec", Images.Lp64Phys + (ulong)page.Length, 0, 0x1000);
        var built = Images.Lp64Core().AddNote(SectionFileReference.NoteName, SectionFileReference.NoteType, reference.Encode()).Build();
        var core = d.File("core", built);
        using (var kvm = Kvm.Open(d.Text("map", Images.Lp64Map), core, flags: KvmOpenFlags.ReadWrite | KvmOpenFlags.NoSearch))
            Assert.Throws<KvmWriteException>(() => kvm.WritePhysical(Images.Lp64Phys + (ulong)page.Length - 16, new byte[32]));
        Assert.Equal(built, File.ReadAllBytes(core));
    }

    [Fact]
    public void An_address_inside_a_large_segment_translates_past_many_later_small_ones()
    {
        var map = new CoreVirtualMap(
            [(0x10000UL, 0x100000UL, 0x100000UL), .. Enumerable.Range(0, 6).Select(i => (0x20000UL + (ulong)i * 0x1000, 0x900000UL + (ulong)i * 0x1000, 0x1000UL))],
            null);
        Assert.True(map.TryTranslate(0x80000, out var pa, out _, out var failure), failure);
        Assert.Equal(0x170000UL, pa);
        Assert.True(map.TryTranslate(0x21010, out pa, out _, out _));
        Assert.Equal(0x901010UL, pa);
        Assert.False(map.TryTranslate(0x200000, out _, out _, out _));
    }

    [Fact]
    public void A_struct_that_contains_itself_through_an_anonymous_member_is_an_error_not_a_stack_overflow()
    {
        var b = new BtfBuilder();
        var self = b.Struct("loop", 4, ("", 1, 0, 0));
        var types = BtfTypes.Parse(b.Build(), pointerSize: 8);
        var e = Assert.Throws<KvmException>(() => new BtfValuePrinter(types).WriteText(new StringWriter(), self, new byte[4], null));
        Assert.Contains("deeper than", e.Message);
    }

    [Fact]
    public void Split_refuses_to_write_over_its_own_input()
    {
        using var d = new TempDir();
        var built = Images.Lp64Core().Build();
        var core = d.File("vmcore", built);
        using var kvm = Kvm.Open(d.Text("map", Images.Lp64Map), core);
        var e = Assert.Throws<KvmException>(() => DumpSplitter.Split(kvm, d.Path));
        Assert.Contains("one of the files being split", e.Message);
        Assert.Equal(built, File.ReadAllBytes(core));
    }
}
