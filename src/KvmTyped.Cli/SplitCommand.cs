using System.CommandLine;
using System.Globalization;
using KvmTyped.Formats;
using KvmTyped.Tools;

namespace KvmTyped.Cli;

/// <summary>`split OUTDIR`: write the dump's memory as a core plus section files (docs/formats/section-files.md).</summary>
internal static class SplitCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var dir = new Argument<string>("outdir") { Description = "folder to write the core and its section files into" };
        var coreMiB = new Option<int>("--core-size") { Description = "MiB of memory kept in the core itself (default 64)", DefaultValueFactory = _ => 64 };
        var sectionMiB = new Option<int>("--section-size") { Description = "largest section file in MiB (default 256)", DefaultValueFactory = _ => 256 };
        var name = new Option<string>("--name") { Description = "file name of the core (default vmcore); sections are NAME.1, NAME.2, …", DefaultValueFactory = _ => "vmcore" };
        var cmd = new Command("split", "write the dump's memory as an ELF core plus section files that kvm_open loads (KVM_NSRCH opens it without them)") { dir, coreMiB, sectionMiB, name };
        cmd.SetAction(r =>
        {
            if (r.GetValue(coreMiB) < 0 || r.GetValue(sectionMiB) <= 0)
            {
                stderr.WriteLine("kvmtyped: --core-size must be 0 or more and --section-size more than 0");
                return CommandLine.Usage;
            }
            var outName = r.GetValue(name)!;
            if (outName.Length == 0 || outName is "." or ".." || outName.Contains('/', StringComparison.Ordinal) || outName.Contains("..", StringComparison.Ordinal))
            {
                stderr.WriteLine("kvmtyped: --name must be a plain file name");
                return CommandLine.Usage;
            }
            using var kvm = common.Open(r, stderr);
            if (kvm is null)
                return CommandLine.Failure;
            using var progress = TerminalProgress.For(stderr, "split");
            try
            {
                var files = DumpSplitter.Split(kvm, r.GetValue(dir)!, new SplitOptions
                {
                    CoreName = outName,
                    CoreBytes = (long)r.GetValue(coreMiB) << 20,
                    SectionBytes = (long)r.GetValue(sectionMiB) << 20,
                    Progress = progress,
                });
                progress?.Dispose();
                if (r.GetValue(common.Json))
                {
                    stdout.WriteLine(Output.Json(w =>
                    {
                        w.WriteStartArray();
                        foreach (var f in files)
                        {
                            w.WriteStartObject();
                            w.WriteString("path", f);
                            Output.Number(w, "size", new FileInfo(f).Length);
                            w.WriteEndObject();
                        }
                        w.WriteEndArray();
                    }));
                    return 0;
                }
                foreach (var f in files)
                    stdout.WriteLine($"{f} {new FileInfo(f).Length.ToString(CultureInfo.InvariantCulture)}");
                return 0;
            }
            catch (Exception e) when (e is KvmException or IOException or UnauthorizedAccessException)
            {
                progress?.Dispose();
                stderr.WriteLine($"kvmtyped: {e.Message}");
                return CommandLine.Failure;
            }
        });
        return cmd;
    }
}
