using System.Diagnostics;
using System.Text;
using KvmTyped.TestSupport;

namespace KvmTyped.Live.Tests;

/// <summary>What the live-kernel tests need from the machine, and the commands they run: dotnet publish of the native
/// builds, the shared live-check.sh, and the repository's guest (tests/live/run-guest.sh).</summary>
internal static class LiveGuest
{
    /// <summary>The fixture kernel the guests boot (from Debian's linux-image-6.1.0-56-amd64).</summary>
    public static string Kernel => Path.Combine(Fixtures.Root, "amd64", "live", "vmlinuz-6.1.0-56-amd64");

    /// <summary>The shared live check.</summary>
    public static string LiveCheck => Path.Combine(Fixtures.Root, "amd64", "live", "live-check.sh");

    /// <summary>The repository's guest for the facade and the system-call count.</summary>
    public static string RunGuest => Path.Combine(Fixtures.RepoRoot, "tests", "live", "run-guest.sh");

    /// <summary>Longest a publish or a guest may take before the test gives up on it (a hang, not a slow run).</summary>
    public static readonly TimeSpan Limit = TimeSpan.FromMinutes(25);

    /// <summary>What is missing to boot the guests and build native code here, or null.</summary>
    public static string? Missing()
    {
        var missing = new List<string>();
        if (!OnPath("qemu-system-x86_64"))
            missing.Add("qemu-system-x86 (qemu-system-x86_64)");
        if (!OnPath("cpio"))
            missing.Add("cpio");
        if (!File.Exists("/bin/busybox"))
            missing.Add("busybox-static (/bin/busybox)");
        if (!OnPath("strace"))
            missing.Add("strace");
        if (!OnPath("python3"))
            missing.Add("python3 (live-check.sh's compare.py)");
        if (!OnPath("clang") && !OnPath("gcc"))
            missing.Add("clang (the NativeAOT linker driver)");
        if (!File.Exists(Kernel))
            missing.Add(Kernel);
        return missing.Count == 0 ? null : $"missing {string.Join(", ", missing)} (apt-get install qemu-system-x86 cpio busybox-static python3 strace clang zlib1g-dev)";
    }

    /// <summary>Whether this is a CI run (.ci/run runs with CI=true), where nothing the live tests need may be missing.</summary>
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, tool)));

    /// <summary>Runs a command to its end; stdout and stderr together, and the exit code.</summary>
    public static (int Code, string Output) Run(string file, IEnumerable<string> args, IDictionary<string, string>? env = null, string? cwd = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = cwd ?? Fixtures.RepoRoot };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        // A build started from inside `dotnet test` must not inherit the outer build's MSBuild settings.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
            psi.Environment.Remove(key);
        if (env is not null)
        {
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        }
        var output = new StringBuilder();
        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!p.WaitForExit(Limit))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            lock (output)
                return (-1, $"{file} did not finish within {Limit.TotalMinutes} minutes (killed)\n{output}");
        }
        p.WaitForExit();
        lock (output)
            return (p.ExitCode, output.ToString());
    }

    /// <summary>dotnet publish of a project as a native linux-x64 executable into <paramref name="output"/>.</summary>
    public static string Publish(string project, string output, string executable, params string[] properties)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var (code, log) = Run(dotnet, ["publish", Path.Combine(Fixtures.RepoRoot, project), "-c", "Release", "-r", "linux-x64", "-o", output,
            "-nodeReuse:false", "--nologo", .. properties]);
        var path = Path.Combine(output, executable);
        if (code != 0 || !File.Exists(path))
            throw new InvalidOperationException($"dotnet publish {project} failed (exit {code}):\n{Tail(log, 40)}");
        return path;
    }

    /// <summary>Runs the tool's install script with <paramref name="prefix"/>; returns the native executable its
    /// <c>bin/kvmtyped</c> links to, after checking that the script printed that link.</summary>
    public static string Install(string prefix)
    {
        var (code, log) = Run("bash", [Path.Combine(Fixtures.RepoRoot, "src/KvmTyped.Cli/install.sh"), prefix]);
        var link = Path.Combine(prefix, "bin", "kvmtyped");
        var target = Path.Combine(prefix, "lib", "kvmtyped", "KvmTyped.Cli");
        if (code != 0 || !log.Contains(link, StringComparison.Ordinal) || new FileInfo(link).ResolveLinkTarget(true)?.FullName != target)
            throw new InvalidOperationException($"src/KvmTyped.Cli/install.sh {prefix} failed (exit {code}):\n{Tail(log, 40)}");
        return target;
    }

    /// <summary>The last lines of a log.</summary>
    public static string Tail(string log, int lines) => string.Join('\n', log.Split('\n').TakeLast(lines));

    /// <summary>The blocks a guest wrote on its data channel: @@KVMLIVE BEGIN name@@ … @@KVMLIVE END name rc=N@@.</summary>
    public static Dictionary<string, (string Text, int Rc)> Blocks(string data)
    {
        var blocks = new Dictionary<string, (string, int)>();
        var lines = data.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        string? name = null;
        var text = new StringBuilder();
        foreach (var line in lines)
        {
            if (name is null && line.StartsWith("@@KVMLIVE BEGIN ", StringComparison.Ordinal) && line.EndsWith("@@", StringComparison.Ordinal))
            {
                name = line["@@KVMLIVE BEGIN ".Length..^2];
                text.Clear();
            }
            else if (name is not null && line.StartsWith($"@@KVMLIVE END {name} rc=", StringComparison.Ordinal))
            {
                var rc = int.Parse(line[$"@@KVMLIVE END {name} rc=".Length..^2], System.Globalization.CultureInfo.InvariantCulture);
                blocks[name] = (text.ToString().TrimEnd('\n'), rc);
                name = null;
            }
            else if (name is not null)
            {
                text.Append(line).Append('\n');
            }
        }
        return blocks;
    }
}

/// <summary>A fact on a real running kernel under QEMU; skipped, naming what is missing, where the machine cannot boot
/// the guest or build native code — except in CI (CI=true), where .ci/run installs all of it and a skip would hide
/// that the live path went untested: there the test runs and fails naming what is missing.</summary>
public sealed class LiveGuestFactAttribute : FactAttribute
{
    /// <summary>Creates the attribute.</summary>
    public LiveGuestFactAttribute()
    {
        if (LiveGuest.Missing() is { } why && !LiveGuest.InCi)
            Skip = why;
    }
}

/// <summary>The native builds, published once for all the live tests: kvmtyped, installed by the documented default
/// install (src/KvmTyped.Cli/install.sh, NativeAOT) into a prefix here, and the libkvm facade program
/// (tests/KvmTyped.LiveFacade).</summary>
public sealed class NativeBuilds : IDisposable
{
    private readonly Lazy<(string Cli, string Facade)> _builds;

    /// <summary>Creates the (lazy) builds in a temporary folder.</summary>
    public NativeBuilds()
    {
        Folder = Directory.CreateTempSubdirectory("kvmtyped-live-").FullName;
        _builds = new Lazy<(string, string)>(() => LiveGuest.Missing() is { } why ? throw new InvalidOperationException($"{why}: .ci/run installs these") : (
            LiveGuest.Install(Path.Combine(Folder, "cli")),
            LiveGuest.Publish("tests/KvmTyped.LiveFacade/KvmTyped.LiveFacade.csproj", Path.Combine(Folder, "facade"), "KvmTyped.LiveFacade")));
        _guest = new Lazy<(string Log, Dictionary<string, (string Text, int Rc)> Blocks)>(RunGuest);
    }

    /// <summary>Where the builds go.</summary>
    public string Folder { get; }

    /// <summary>The native kvmtyped.</summary>
    public string Cli => _builds.Value.Cli;

    /// <summary>The native facade program.</summary>
    public string Facade => _builds.Value.Facade;

    private readonly Lazy<(string Log, Dictionary<string, (string Text, int Rc)> Blocks)> _guest;

    /// <summary>One run of the repository's guest (tests/live): its host-side log and the blocks it wrote.</summary>
    public (string Log, Dictionary<string, (string Text, int Rc)> Blocks) Guest => _guest.Value;

    /// <summary>The virtio disk the guest's LiME run writes to.</summary>
    public string LimeDisk => Path.Combine(Folder, "lime.disk");

    private (string, Dictionary<string, (string, int)>) RunGuest()
    {
        var data = Path.Combine(Folder, "guest-data.log");
        var (code, log) = LiveGuest.Run("bash", [LiveGuest.RunGuest, Cli, Facade, data, LimeDisk], new Dictionary<string, string> { ["LIVE_KERNEL"] = LiveGuest.Kernel });
        if (code != 0 || !File.Exists(data))
            throw new InvalidOperationException($"tests/live/run-guest.sh failed (exit {code}):\n{LiveGuest.Tail(log, 30)}");
        return (log, LiveGuest.Blocks(File.ReadAllText(data)));
    }

    /// <summary>The LiME file the guest wrote: the disk's leading ranges (header and bytes each), without the disk's
    /// unused rest.</summary>
    public string LimeFile()
    {
        _ = Guest;
        var path = Path.Combine(Folder, "guest.lime");
        if (File.Exists(path))
            return path;
        using (var disk = File.OpenRead(LimeDisk))
        {
            var header = new byte[32];
            long end = 0;
            while (end + 32 <= disk.Length)
            {
                disk.Position = end;
                disk.ReadExactly(header);
                if (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(header) != 0x4C69_4D45)
                    break;
                var first = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(8));
                var last = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(16));
                end += 32 + (long)(last - first + 1);
            }
            if (end == 0)
                throw new InvalidOperationException($"{LimeDisk} holds no LiME range: LiME did not write to the guest's disk");
            disk.Position = 0;
            using var lime = File.Create(path);
            var buffer = new byte[1 << 20];
            for (var left = end; left > 0;)
            {
                var n = disk.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                lime.Write(buffer, 0, n);
                left -= n;
            }
        }
        File.Delete(LimeDisk);
        return path;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The live tests share one set of native builds and run one after another (each boots a guest).</summary>
[CollectionDefinition("Live guest")]
public sealed class LiveGuestCollection : ICollectionFixture<NativeBuilds>;
