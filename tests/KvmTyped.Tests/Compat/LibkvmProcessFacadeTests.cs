using KvmTyped.Compat;
using static KvmTyped.Compat.Libkvm;

namespace KvmTyped.Tests.Compat;

[Collection("Libkvm globals")]
public class LibkvmProcessFacadeTests
{
    [Fact]
    public void Null_handles_and_null_procs_fail_the_C_way()
    {
        Assert.Equal(-1, kvm_setproc(null));
        Assert.Null(kvm_nextproc(null));
        Assert.Null(kvm_getproc(null, 1));
        Assert.Null(kvm_getu(null, null));
        Assert.Equal(-1, kvm_getcmd(null, null, null, out var arg, out var env));
        Assert.Null(arg);
        Assert.Null(env);
        Assert.Equal(-1, kvm_uread(null, 0x1000, new byte[8]));
        Assert.Equal(-1, kvm_uwrite(null, 0x1000, new byte[8]));
    }

    /// <summary>A core whose kernel has no BTF: the process functions fail behind errstr, and kvm_close drops the
    /// per-handle state.</summary>
    [Fact]
    public void Without_btf_the_process_calls_fail_behind_errstr_and_close_drops_the_state()
    {
        using var d = new TempDir();
        var core = d.File("vmcore", Images.Lp64Core().Build());
        var err = new StringWriter();
        ErrorWriter = err;
        try
        {
            var kd = kvm_open(d.Text("map", Images.Lp64Map), core, null, O_RDONLY, "ps");
            Assert.NotNull(kd);
            Assert.Equal(0, kvm_setproc(kd));
            Assert.Null(kvm_nextproc(kd));
            Assert.StartsWith("ps: kvm_nextproc: ", err.ToString(), StringComparison.Ordinal);
            Assert.Null(kvm_getproc(kd, 1));
            Assert.Contains("ps: kvm_getproc: ", err.ToString(), StringComparison.Ordinal);
            Assert.Equal(-1, kvm_uread(kd, 0x1000, new byte[8]));
            Assert.Contains("ps: kvm_uread: no process: call kvm_getu first", err.ToString(), StringComparison.Ordinal);
            Assert.Equal(-1, kvm_uwrite(kd, 0x1000, new byte[8]));
            Assert.Contains("ps: kvm_uwrite: no process", err.ToString(), StringComparison.Ordinal);

            // State a walk leaves behind is dropped by kvm_close.
            kd!.Procs.List = [];
            kd.Procs.Cursor = 3;
            Assert.Null(kvm_nextproc(kd)); // at the end of an empty list
            Assert.Equal(0, kvm_setproc(kd));
            Assert.Null(kd.Procs.List);
            Assert.Equal(0, kd.Procs.Cursor);
            kd.Procs.List = [];
            Assert.Equal(0, kvm_close(kd));
            Assert.Null(kd.Procs.List);
            Assert.Null(kd.Procs.Current);
            Assert.Null(kd.Procs.CurrentSpace);
            Assert.Null(kd.Procs.Tasks);
            var before = err.ToString();
            Assert.Equal(-1, kvm_setproc(kd));
            Assert.Null(kvm_nextproc(kd));
            Assert.Null(kvm_getproc(kd, 1));
            Assert.Equal(-1, kvm_uread(kd, 0x1000, new byte[8]));
            Assert.Equal(before, err.ToString()); // a closed handle fails silently, as C's would
        }
        finally
        {
            ErrorWriter = Console.Error;
        }
    }
}
