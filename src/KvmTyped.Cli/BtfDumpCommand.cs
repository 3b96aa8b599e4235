using KvmTyped.Tools;

namespace KvmTyped.Cli;

/// <summary><c>kvmtyped btf dump FILE [TYPE...] [--json]</c>: struct and union layouts from a raw BTF file
/// (e.g. /sys/kernel/btf/vmlinux, or one made by <c>pahole --btf_encode_detached</c>) or an ELF file's .BTF section.</summary>
internal static class BtfDumpCommand
{
    /// <summary>Prints the layouts of <paramref name="types"/> (every named struct and union when empty) in pahole's
    /// style, or as JSON in the shape of <c>schema layout --json</c>. Returns 0, or 1 after printing
    /// <c>kvmtyped: message</c> to <paramref name="stderr"/>.</summary>
    internal static int Run(string file, IReadOnlyList<string> types, bool json, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(types);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        try
        {
            var btf = KernelBtf.Load(file);
            var output = new StringWriter();
            if (json)
                BtfDump.WriteJson(btf, types, output);
            else
                BtfDump.WriteText(btf, types, output);
            stdout.Write(output.ToString());
            return 0;
        }
        catch (Exception e) when (e is KvmException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"kvmtyped: {Message(file, e)}");
            return 1;
        }
    }

    private static string Message(string file, Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException => $"{file}: {Output.FileError(e)}",
        _ => e.Message,
    };
}
