using System.Globalization;
using System.Text;

namespace KvmTyped.Cli;

/// <summary>The library names what a caller can change in its own terms — a <see cref="KvmOpenOptions"/> member
/// (<c>KvmOpenOptions.TypesPath</c>) or a <see cref="Kvm.Open(string?, string?, string?, KvmOpenFlags, string?, KvmOpenOptions?)"/>
/// argument ("the namelist") — since it cannot know the command line it runs under. This is where the tool says the
/// same in its own terms: each such name in a message becomes the flag that sets it.</summary>
internal static class ApiTerms
{
    private static readonly (string Api, string Cli)[] Names =
    [
        ($"{nameof(KvmOpenOptions)}.{nameof(KvmOpenOptions.TypesPath)}", "--types"),
        ($"{nameof(KvmOpenOptions)}.{nameof(KvmOpenOptions.BtfPath)}", "--types"),
        ($"{nameof(KvmOpenOptions)}.{nameof(KvmOpenOptions.RawImage)}", "--raw"),
        ($"{nameof(KvmOpenOptions)}.{nameof(KvmOpenOptions.SplitFiles)}", "--part"),
        ($"{nameof(KvmOpenOptions)}.{nameof(KvmOpenOptions.SymbolsOnly)}", "no -c"),
        ("as the namelist argument", "(-n)"),
        ("the namelist argument", "-n"),
        ("the corefile argument", "-c"),
        ("the swapfile argument", "--swap"),
        ("KVM_NSRCH", "--nsrch"),
    ];

    /// <summary><paramref name="message"/> with each API name replaced by its flag.</summary>
    public static string ToFlags(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (!message.Contains(nameof(KvmOpenOptions), StringComparison.Ordinal) && !message.Contains(" argument", StringComparison.Ordinal) && !message.Contains("KVM_NSRCH", StringComparison.Ordinal))
            return message;
        var sb = new StringBuilder(message);
        foreach (var (api, cli) in Names)
            sb.Replace(api, cli);
        return sb.ToString();
    }

    /// <summary>A writer that passes each line on through <see cref="ToFlags"/>: the tool's standard error, where the
    /// library's messages are printed.</summary>
    public static TextWriter Writer(TextWriter inner) => inner is FlagWriter ? inner : new FlagWriter(inner);

    /// <summary>The writer under a <see cref="Writer"/> one.</summary>
    public static TextWriter Unwrap(TextWriter writer) => writer is FlagWriter f ? f.Inner : writer;

    private sealed class FlagWriter(TextWriter inner) : TextWriter(CultureInfo.InvariantCulture)
    {
        public TextWriter Inner => inner;

        public override Encoding Encoding => inner.Encoding;

        public override void Write(char value) => inner.Write(value);

        public override void Write(string? value) => inner.Write(value is null ? null : ToFlags(value));

        public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

        public override void WriteLine(string? value) => inner.WriteLine(value is null ? null : ToFlags(value));

        public override void WriteLine() => inner.WriteLine();

        public override void Flush() => inner.Flush();
    }
}
