using System.Diagnostics.CodeAnalysis;
using KvmTyped.Btf;
using KvmTyped.Kernels.Tests.Kernel;
using KvmTyped.TestSupport;
using KvmTyped.Types;

namespace KvmTyped.Kernels.Tests;

/// <summary>The analyzer this project is: numa_scan_seq declared optional (in C, and in C# on a flavor), built against
/// the amd64 6.1 kernel (which has it) and its PREEMPT_RT build (which does not). It built clean, or these tests would not
/// run; here it reads the member where a kernel has it and says so where one does not.</summary>
public sealed class NumaAnalyzerTests
{
    private const string Amd64Map = "amd64/System.map-6.1.0-56-amd64";
    private const string PanicDump = "amd64/panic-kaslr/dump.kdump-zlib";
    private const string RtBtf = "amd64/rt/vmlinux-6.1.0-56-rt-amd64.btf";

    [Fact]
    public void WasBuiltAgainstBothFixtureKernels()
    {
        // The build lists a kernel only when its file was there; without the fixtures this names what was missing.
        var releases = KvmTypedTargetKernels.Releases;
        foreach (var (release, file) in new[] { ("6.1.0-56-amd64", "amd64/vmlinux-6.1.0-56-amd64.gz"), ("6.1.0-56-rt-amd64", RtBtf) })
        {
            Assert.True(releases.Contains(release), $"the build did not check against {release}: is {Path.Combine(Fixtures.Root, file)} there?");
        }
        Assert.Equal(2, releases.Count);
        Assert.All(KvmTypedTargetKernels.Machines, m => Assert.Equal("x86_64", m));
    }

    [Fact]
    public void ReadsNumaScanSeqWhereBtfPlacesItOnTheAmd64Dump()
    {
        using var kvm = Kvm.Open(Fixtures.Get(Amd64Map), Fixtures.Get(PanicDump));
        var btf = kvm.Btf.Types;
        Assert.True(btf.TryFind("task_struct", BtfKind.Struct, out var taskStruct));
        var member = btf.FindMember(taskStruct, "numa_scan_seq");
        Assert.NotNull(member);
        var offset = (ulong)member.Value.Offset;
        var nodeStamp = (ulong)btf.FindMember(taskStruct, "node_stamp")!.Value.Offset;

        var init = task_struct.At(kvm, kvm.SymbolAddress("init_task"));
        Assert.True(init.Has_numa_scan_seq);
        Assert.Equal(offset, task_struct.OffsetOf(kvm, "numa_scan_seq"));
        var tasks = init.tasks.Entries<task_struct>(t => t.tasks).Prepend(init).ToList();
        Assert.True(tasks.Count > 10, $"only {tasks.Count} tasks on init_task.tasks");
        foreach (var t in tasks)
        {
            Assert.Equal(KernelReader.ReadInt32(kvm, t.Address + offset), t.numa_scan_seq);
            var flavor = task_struct___numa.At(kvm, t.Address);
            Assert.True(flavor.Has_numa_scan_seq && flavor.Has_node_stamp);
            Assert.Equal(t.pid, flavor.pid);
            Assert.Equal(t.numa_scan_seq, flavor.numa_scan_seq);
            Assert.Equal(KernelReader.ReadUnsigned(kvm, t.Address + nodeStamp, 8), flavor.node_stamp);
        }
        Assert.Equal("swapper/0", init.comm);
        Assert.Contains(tasks, t => t.comm == "systemd" || t.comm == "init");
    }

    [Fact]
    public void SaysARealTimeKernelHasNoNumaScanSeq()
    {
        // A synthetic image of the PREEMPT_RT kernel: one task_struct laid out as its BTF says, relocated against it.
        var rt = BtfTypes.Parse(File.ReadAllBytes(Fixtures.Get(RtBtf)), sourceName: RtBtf);
        Assert.True(rt.TryFind("task_struct", BtfKind.Struct, out var taskStruct));
        Assert.Null(rt.FindMember(taskStruct, "numa_scan_seq"));
        const ulong Base = 0xffff888004000000;
        var image = new Image(new BtfRelocator(rt, DataModel.LP64, "kernel 6.1.0-56-rt-amd64"), Base, (int)rt.SizeOf(taskStruct));
        image.Write(Base + (ulong)rt.FindMember(taskStruct, "pid")!.Value.Offset, 4242, 4);
        image.Write(Base + (ulong)rt.FindMember(taskStruct, "comm")!.Value.Offset, "rt-worker"u8);

        var task = task_struct.At(image, Base);
        Assert.False(task.Has_numa_scan_seq);
        Assert.Equal(4242, task.pid);
        Assert.Equal("rt-worker", task.comm);
        var e = Assert.Throws<KvmException>(() => task.numa_scan_seq);
        Assert.Contains("numa_scan_seq", e.Message, StringComparison.Ordinal);
        Assert.Contains("6.1.0-56-rt-amd64", e.Message, StringComparison.Ordinal);

        var flavor = task_struct___numa.At(image, Base);
        Assert.False(flavor.Has_numa_scan_seq);
        Assert.False(flavor.Has_node_stamp);
        Assert.Equal(4242, flavor.pid);
    }

    /// <summary>Kernel memory of one buffer at a base address, LP64, whose types come from a relocator.</summary>
    private sealed class Image(BtfRelocator types, ulong baseAddress, int size) : IKernelMemory, IKernelTypeOffsets
    {
        private readonly byte[] _bytes = new byte[size];

        public DataModel DataModel => DataModel.LP64;

        public bool TryReadVirtual(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
        {
            if (address < baseAddress || address - baseAddress + (ulong)destination.Length > (ulong)_bytes.Length)
            {
                failure = $"0x{address:x} is outside the image";
                return false;
            }
            _bytes.AsSpan((int)(address - baseAddress), destination.Length).CopyTo(destination);
            failure = null;
            return true;
        }

        public KernelRelocation Relocate(KernelRelocationRequest request) => types.Relocate(request);

        public void Write(ulong address, ulong value, int length)
        {
            for (var i = 0; i < length; i++)
                _bytes[(int)(address - baseAddress) + i] = (byte)(value >> (8 * i));
        }

        public void Write(ulong address, ReadOnlySpan<byte> text) => text.CopyTo(_bytes.AsSpan((int)(address - baseAddress)));
    }
}
