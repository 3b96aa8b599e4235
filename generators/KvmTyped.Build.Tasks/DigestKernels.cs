using System.Globalization;
using KvmTyped.Btf;
using KvmTyped.Tools;
using Microsoft.Build.Framework;

namespace KvmTyped.Build.Tasks;

/// <summary>Turns each <c>KvmTypedKernel</c> item (raw BTF, or an ELF file with .BTF, either possibly .gz) into a text
/// digest under <see cref="OutputDirectory"/>, which build/KvmTyped.targets hands to the source generator as an
/// AdditionalFiles item. A digest whose kernel file (length and time), release, machine and format are unchanged is
/// left as it is, so an incremental build neither re-reads the kernel nor recompiles for it.</summary>
/// <remarks>Item metadata: <c>Release</c> (default: from the file name, "vmlinux-6.1.0-56-amd64.btf" → "6.1.0-56-amd64")
/// and <c>Machine</c> (default: the ELF header's, or for raw BTF what its struct pt_regs says). Errors: KVMT0150 (the
/// kernel file is missing), KVMT0151 (it holds no readable BTF), KVMT0152 (two kernel files of one name).</remarks>
public sealed class DigestKernels : Microsoft.Build.Utilities.Task
{
    /// <summary>Bumped whenever the digests this task writes change for the same input.</summary>
    private const string Version = "1";

    /// <summary>The kernel files.</summary>
    [Required]
    public ITaskItem[] Kernels { get; set; } = [];

    /// <summary>Where the digests go (obj/…/kvmtyped/).</summary>
    [Required]
    public string OutputDirectory { get; set; } = string.Empty;

    /// <summary>One digest per kernel, in the order of <see cref="Kernels"/>, with metadata KvmTypedKernelDigest=true,
    /// Release, Machine and KvmTypedKernel (the kernel file).</summary>
    [Output]
    public ITaskItem[] Digests { get; private set; } = [];

    /// <inheritdoc/>
    public override bool Execute()
    {
        Directory.CreateDirectory(OutputDirectory);
        var outcomes = new Outcome[Kernels.Length];
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < Kernels.Length; i++)
        {
            var source = Path.GetFullPath(Kernels[i].GetMetadata("FullPath") is { Length: > 0 } full ? full : Kernels[i].ItemSpec);
            // The targets name each digest the same way (KERNEL-FILE-NAME.kvmtk) to know, before running, whether it is stale.
            var output = Path.Combine(OutputDirectory, Path.GetFileName(source) + ".kvmtk");
            outcomes[i] = new Outcome(source, output, Kernels[i].GetMetadata("Release"), Kernels[i].GetMetadata("Machine"));
        }
        foreach (var o in outcomes)
        {
            if (seen.TryGetValue(o.Output, out var first))
            {
                Log.LogError(subcategory: null, errorCode: "KVMT0152", helpKeyword: null, file: o.Source, lineNumber: 0, columnNumber: 0, endLineNumber: 0, endColumnNumber: 0,
                    message: $"two KvmTypedKernel files have the name {Path.GetFileName(o.Source)} ({first} and {o.Source}); their digests would be one file: rename one");
            }
            seen[o.Output] = o.Source;
        }
        if (Log.HasLoggedErrors)
            return false;
        // Reading and digesting a kernel is independent of the others; logging waits for the end (a task logs from
        // its own thread).
        Parallel.For(0, outcomes.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, i => outcomes[i].Run());
        var digests = new List<ITaskItem>();
        foreach (var o in outcomes)
        {
            if (o.Error is { } error)
            {
                Log.LogError(subcategory: null, errorCode: o.ErrorCode, helpKeyword: null, file: o.Source, lineNumber: 0, columnNumber: 0, endLineNumber: 0, endColumnNumber: 0,
                    message: error);
                continue;
            }
            Log.LogMessage(MessageImportance.Normal, o.UpToDate
                ? $"KvmTyped: kernel {o.Release} ({o.Machine}) digest is up to date: {o.Output}"
                : $"KvmTyped: kernel {o.Release} ({o.Machine}) from {o.Source} -> {o.Output}");
            var item = new Microsoft.Build.Utilities.TaskItem(o.Output);
            item.SetMetadata("KvmTypedKernelDigest", "true");
            item.SetMetadata("KvmTypedKernel", o.Source);
            item.SetMetadata("Release", o.Release);
            item.SetMetadata("Machine", o.Machine);
            digests.Add(item);
        }
        Digests = [.. digests];
        return !Log.HasLoggedErrors;
    }

    private sealed class Outcome(string source, string output, string release, string machine)
    {
        public string Source { get; } = source;

        public string Output { get; } = output;

        public string Release { get; private set; } = release;

        public string Machine { get; private set; } = machine;

        public bool UpToDate { get; private set; }

        public string? Error { get; private set; }

        public string ErrorCode { get; private set; } = "KVMT0151";

        public void Run()
        {
            try
            {
                if (!File.Exists(Source))
                {
                    ErrorCode = "KVMT0150";
                    Error = $"KvmTypedKernel file not found: {Source}";
                    return;
                }
                var info = new FileInfo(Source);
                var stamp = string.Join(" ", Version, info.Length.ToString(CultureInfo.InvariantCulture),
                    info.LastWriteTimeUtc.Ticks.ToString(CultureInfo.InvariantCulture), Release.Length > 0 ? Release : "-", Machine.Length > 0 ? Machine : "-");
                if (ReadHeader(Output) is { } header && header.TryGetValue("stamp", out var old) && old == stamp)
                {
                    Release = header.GetValueOrDefault("release", Release);
                    Machine = header.GetValueOrDefault("machine", Machine);
                    UpToDate = true;
                    // Newer than its inputs again, so the targets skip this step next time (the content is the same).
                    File.SetLastWriteTimeUtc(Output, DateTime.UtcNow);
                    return;
                }
                var contents = KernelFile.Load(Source);
                var release = Release.Length > 0 ? Release : KernelFile.ReleaseFromName(Source);
                var btf = BtfTypes.Parse(contents.Blob, null, Source);
                var text = KernelDigestWriter.Write(btf, contents.Blob, release, Machine.Length > 0 ? Machine : contents.ElfMachine, Source, stamp);
                var temp = Output + "." + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + ".tmp";
                File.WriteAllText(temp, text, new System.Text.UTF8Encoding(false));
                File.Move(temp, Output, overwrite: true);
                var written = ReadHeader(Output)!;
                Release = written["release"];
                Machine = written["machine"];
            }
            catch (Exception e) when (e is KvmException or IOException or UnauthorizedAccessException or InvalidDataException)
            {
                Error = $"cannot read the BTF of KvmTypedKernel {Source}: {e.Message}";
            }
        }

        /// <summary>The header of an existing digest (key → value), or null when there is none.</summary>
        private static Dictionary<string, string>? ReadHeader(string path)
        {
            if (!File.Exists(path))
                return null;
            var header = new Dictionary<string, string>(StringComparer.Ordinal);
            using var reader = new StreamReader(path);
            if (reader.ReadLine() != KernelDigestWriter.Magic)
                return null;
            for (var i = 0; i < 32 && reader.ReadLine() is { } line && line != "---"; i++)
            {
                var space = line.IndexOf(' ');
                if (space > 0)
                    header[line[..space]] = line[(space + 1)..];
            }
            return header;
        }
    }
}
