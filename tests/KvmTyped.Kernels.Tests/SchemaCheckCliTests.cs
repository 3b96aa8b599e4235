using System.Text.Json;
using KvmTyped.Cli;
using KvmTyped.TestSupport;

namespace KvmTyped.Kernels.Tests;

/// <summary>`kvmtyped schema check`: the findings of a build, from the command line, on the fixture kernels.</summary>
public sealed class SchemaCheckCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmtyped-check-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The amd64 kernel as the fixtures keep it, gzip'd: the command reads .gz itself.</summary>
    private static string Amd64
    {
        get
        {
            var path = Path.Combine(Fixtures.Root, "amd64", "vmlinux-6.1.0-56-amd64.gz");
            Assert.True(File.Exists(path), $"fixture missing: {path} (the tests need ../shared/fixtures beside the repository, or KVMTYPED_FIXTURES)");
            return path;
        }
    }

    private static string Rt => Fixtures.Get("amd64/rt/vmlinux-6.1.0-56-rt-amd64.btf");

    private string Schema(string text)
    {
        var path = Path.Combine(_dir, "numa.h");
        File.WriteAllText(path, text);
        return path;
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = CommandLine.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void ReportsTheMemberTheRealTimeKernelLacks()
    {
        var schema = Schema("struct task_struct {\n    int pid;\n    int numa_scan_seq;\n} __attribute__((preserve_access_index));\n");
        var (code, output, error) = Run("schema", "check", schema, "--btf", Amd64, "--btf", Rt);
        Assert.Equal(1, code);
        Assert.Equal("", error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal($"{schema}:3:9: warning KVMT0100: task_struct.numa_scan_seq does not exist in 6.1.0-56-rt-amd64 (mark the member __kvmt_optional if only some target kernels have it)", lines[0]);
        Assert.Equal("1 finding in 1 struct against 6.1.0-56-amd64 (x86_64), 6.1.0-56-rt-amd64 (x86_64)", lines[1]);
    }

    [Fact]
    public void OptionalMemberChecksClean()
    {
        var schema = Schema("struct task_struct {\n    int pid;\n    int numa_scan_seq __kvmt_optional;\n} __attribute__((preserve_access_index));\n");
        var (code, output, _) = Run("schema", "check", schema, "-k", Amd64, "-k", Rt, "-k", Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf"));
        Assert.Equal(0, code);
        Assert.Equal("0 findings in 1 struct against 6.1.0-56-amd64 (x86_64), 6.1.0-56-rt-amd64 (x86_64), 6.1.0-50-686-pae (i386)", output.Trim());
    }

    [Fact]
    public void JsonNamesKernelsAndFindings()
    {
        var schema = Schema("struct task_struct {\n    long pid;\n} __attribute__((preserve_access_index));\n");
        var (code, output, _) = Run("schema", "check", schema, "--btf", Rt, "--btf", Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf"), "--json");
        Assert.Equal(1, code);
        using var doc = JsonDocument.Parse(output);
        var kernels = doc.RootElement.GetProperty("kernels").EnumerateArray().Select(k => (k.GetProperty("release").GetString(), k.GetProperty("machine").GetString(), k.GetProperty("pointerSize").GetInt32())).ToList();
        Assert.Equal([("6.1.0-56-rt-amd64", "x86_64", 8), ("6.1.0-50-686-pae", "i386", 4)], kernels);
        var finding = Assert.Single(doc.RootElement.GetProperty("findings").EnumerateArray());
        Assert.Equal("KVMT0102", finding.GetProperty("id").GetString());
        Assert.Equal("6.1.0-56-rt-amd64", finding.GetProperty("kernel").GetString());
        Assert.Equal(2, finding.GetProperty("line").GetInt32());
        Assert.Contains("the sizes differ (8 bytes declared, 4 in the kernel)", finding.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ShippedSchemasCheckCleanWithTheirArchitecture()
    {
        var x86 = Directory.GetFiles(Path.Combine(Fixtures.RepoRoot, "schemas", "linux", "arch", "x86_64"), "*.h");
        var (code, output, error) = Run(["schema", "check", .. x86, "--arch", "X86_64", "--with-shipped", "--btf", Amd64, "--btf", Rt, "--btf", Fixtures.Get("arm64/vmlinux-6.1.0-50-arm64.btf")]);
        Assert.True(code == 0, output + error);
        Assert.StartsWith("0 findings", output, StringComparison.Ordinal);
    }

    [Fact]
    public void UnreadableKernelIsAUsageError()
    {
        var schema = Schema("struct task_struct { int pid; } __attribute__((preserve_access_index));\n");
        var notBtf = Path.Combine(_dir, "not-btf");
        File.WriteAllText(notBtf, "hello");
        var (code, _, error) = Run("schema", "check", schema, "--btf", notBtf);
        Assert.Equal(2, code);
        Assert.Contains($"cannot read the BTF of {notBtf}", error, StringComparison.Ordinal);
        Assert.Contains("neither raw BTF", error, StringComparison.Ordinal);
        Assert.Equal(2, Run("schema", "check", schema).Code);
    }
}
