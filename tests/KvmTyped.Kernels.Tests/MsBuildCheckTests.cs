using System.Diagnostics;
using KvmTyped.TestSupport;

namespace KvmTyped.Kernels.Tests;

/// <summary>A real `dotnet build` of a small project outside the repository that uses the built library, generator,
/// task and targets as a package would give them, with the amd64 kernel and its PREEMPT_RT build as KvmTypedKernel
/// items: the missing member is a warning at its schema line, TreatWarningsAsErrors fails the build, and the kernels'
/// digests are not written again when nothing about the kernels changed; two kernel files of one name are refused.</summary>
public sealed class MsBuildCheckTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmtyped-build-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The configuration this test assembly was built in (bin/CONFIG/net10.0/); the other outputs share it.</summary>
    private static string Configuration => Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)))!;

    private static string Built(params string[] parts)
    {
        var path = Path.Combine([Fixtures.RepoRoot, .. parts]);
        Assert.True(File.Exists(path), $"{path} is not built");
        return path;
    }

    private void WriteProject()
    {
        string Fixture(string relative)
        {
            var path = Path.Combine(Fixtures.Root, relative);
            Assert.True(File.Exists(path), $"fixture missing: {path}");
            return path;
        }
        var generator = Built("generators", "KvmTyped.Generators", "bin", Configuration, "netstandard2.0", "KvmTyped.Generators.dll");
        var tasks = Built("generators", "KvmTyped.Build.Tasks", "bin", Configuration, "net10.0", "KvmTyped.Build.Tasks.dll");
        var targets = Built("generators", "KvmTyped.Generators", "build", "KvmTyped.targets");
        File.WriteAllText(Path.Combine(_dir, "Probe.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <KvmTypedNamespace>Probe.Kernel</KvmTypedNamespace>
                <KvmTypedIncludeShippedSchemas>false</KvmTypedIncludeShippedSchemas>
                <KvmTypedTasksAssembly>{tasks}</KvmTypedTasksAssembly>
              </PropertyGroup>
              <ItemGroup>
                <Reference Include="{typeof(Kvm).Assembly.Location}" />
                <Analyzer Include="{generator}" />
                <KvmTypedSchema Include="numa.h" />
                <KvmTypedKernel Include="{Fixture("amd64/vmlinux-6.1.0-56-amd64.gz")}" />
                <KvmTypedKernel Include="{Fixture("amd64/rt/vmlinux-6.1.0-56-rt-amd64.btf")}" />
              </ItemGroup>
              <Import Project="{targets}" />
            </Project>
            """);
        File.WriteAllText(Path.Combine(_dir, "numa.h"), "struct task_struct {\n    int pid;\n    int numa_scan_seq;\n} __attribute__((preserve_access_index));\n");
        File.WriteAllText(Path.Combine(_dir, "Probe.cs"),
            "namespace Probe;\npublic static class Numa\n{\n    public static int Seq(KvmTyped.Types.IKernelMemory m, ulong task) => Probe.Kernel.task_struct.At(m, task).numa_scan_seq;\n}\n");
    }

    private (int Code, string Output) Build(params string[] properties)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir };
        foreach (var a in new[] { "build", "-c", Configuration, "-nodeReuse:false", "-v:minimal", "-clp:NoSummary" }.Concat(properties.Select(p => "-p:" + p)))
            start.ArgumentList.Add(a);
        // This process runs under the test host; the child build finds its own MSBuild.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(key);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(5)), "dotnet build did not finish within 5 minutes");
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    [Fact]
    public void BuildWarnsAtTheSchemaLineAndFailsWithWarningsAsErrors()
    {
        WriteProject();
        var (code, output) = Build();
        Assert.True(code == 0, output);
        var warning = Assert.Single(output.Split('\n').Where(l => l.Contains("KVMT0100", StringComparison.Ordinal)).Distinct());
        Assert.Contains("numa.h(3,9): warning KVMT0100: task_struct.numa_scan_seq does not exist in 6.1.0-56-rt-amd64", warning, StringComparison.Ordinal);

        var digests = Directory.GetFiles(Path.Combine(_dir, "obj", Configuration, "net10.0", "kvmtyped"), "*.kvmtk");
        Assert.Equal(2, digests.Length);
        var written = digests.ToDictionary(d => d, File.GetLastWriteTimeUtc);

        // An unrelated edit: the compiler runs again, the kernels are not read again.
        File.AppendAllText(Path.Combine(_dir, "Probe.cs"), "internal static class Unrelated { }\n");
        (code, output) = Build("TreatWarningsAsErrors=true");
        Assert.True(code != 0, output);
        Assert.Contains("numa.h(3,9): error KVMT0100: task_struct.numa_scan_seq does not exist in 6.1.0-56-rt-amd64", output, StringComparison.Ordinal);
        Assert.All(written, w => Assert.Equal(w.Value, File.GetLastWriteTimeUtc(w.Key)));

        // (Declared optional, the same member builds clean: this test project itself is built that way.)

        // Two kernel files of one name would share a digest: the task refuses them, naming both.
        var other = Directory.CreateDirectory(Path.Combine(_dir, "other")).FullName;
        var copy = Path.Combine(other, "vmlinux-6.1.0-56-rt-amd64.btf");
        File.Copy(Path.Combine(Fixtures.Root, "amd64", "rt", "vmlinux-6.1.0-56-rt-amd64.btf"), copy);
        File.WriteAllText(Path.Combine(_dir, "Directory.Build.targets"), $"<Project><ItemGroup><KvmTypedKernel Include=\"{copy}\" /></ItemGroup></Project>");
        (code, output) = Build();
        Assert.True(code != 0, output);
        Assert.Contains("error KVMT0152: two KvmTypedKernel files have the name vmlinux-6.1.0-56-rt-amd64.btf", output, StringComparison.Ordinal);
    }
}
