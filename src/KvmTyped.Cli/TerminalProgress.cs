using System.Globalization;
using System.Text;

namespace KvmTyped.Cli;

/// <summary>Progress on stderr, only when stderr is a terminal: "NAME: 42%", redrawn in place, at most ten times a second.</summary>
internal sealed class TerminalProgress : IProgress<double>, IDisposable
{
    private readonly TextWriter _writer;
    private readonly string _what;
    private long _last;
    private int _shown = -1;

    private TerminalProgress(TextWriter writer, string what)
    {
        _writer = writer;
        _what = what;
    }

    /// <summary>A progress sink, or null when <paramref name="stderr"/> is not the console's stderr on a terminal.</summary>
    public static TerminalProgress? For(TextWriter stderr, string what) =>
        ReferenceEquals(Output.Unescaped(stderr), Console.Error) && !Console.IsErrorRedirected ? new TerminalProgress(Output.Unescaped(stderr), what) : null;

    public void Report(double value)
    {
        var percent = (int)(Math.Clamp(value, 0, 1) * 100);
        var now = Environment.TickCount64;
        if (percent == _shown || (now - _last < 100 && percent < 100))
            return;
        _last = now;
        _shown = percent;
        _writer.Write($"\r{_what}: {percent.ToString(CultureInfo.InvariantCulture),3}%");
    }

    public void Dispose()
    {
        if (_shown >= 0)
            _writer.Write("\r" + new string(' ', _what.Length + 6) + "\r");
        _shown = -1;
    }
}

/// <summary>A "still working" line on stderr, only when stderr is a terminal and the work takes more than half a
/// second: "NAME… 1.5 s", redrawn four times a second, erased when the work ends or before anything else is
/// written to stderr through <see cref="Guard"/>.</summary>
internal sealed class TerminalBusy : IDisposable
{
    private readonly TextWriter _writer;
    private readonly string _what;
    private readonly long _start = Environment.TickCount64;
    private readonly Lock _lock = new();
    private readonly Timer _timer;
    private int _drawnLength;
    private bool _stopped;

    private TerminalBusy(TextWriter writer, string what)
    {
        _writer = writer;
        _what = what;
        _timer = new Timer(_ => Draw(), null, 500, 250);
    }

    /// <summary>An indicator, or null when <paramref name="stderr"/> is not the console's stderr on a terminal.</summary>
    public static TerminalBusy? Start(TextWriter stderr, string what) =>
        ReferenceEquals(Output.Unescaped(stderr), Console.Error) && !Console.IsErrorRedirected ? new TerminalBusy(Output.Unescaped(stderr), what) : null;

    /// <summary>A writer that erases the indicator before passing text on to <paramref name="inner"/>.</summary>
    public static TextWriter Guard(TerminalBusy? busy, TextWriter inner) => busy is null ? inner : new ClearingWriter(busy, inner);

    private void Draw()
    {
        lock (_lock)
        {
            if (_stopped)
                return;
            var text = $"\r{_what}… {((Environment.TickCount64 - _start) / 1000.0).ToString("F1", CultureInfo.InvariantCulture)} s";
            _writer.Write(text);
            _writer.Flush();
            _drawnLength = text.Length;
        }
    }

    /// <summary>Stops the indicator and erases its line.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_stopped)
                return;
            _stopped = true;
            _timer.Dispose();
            if (_drawnLength > 0)
                _writer.Write("\r" + new string(' ', _drawnLength) + "\r");
        }
    }

    private sealed class ClearingWriter(TerminalBusy busy, TextWriter inner) : TextWriter
    {
        public override Encoding Encoding => inner.Encoding;

        public override void Write(char value)
        {
            busy.Dispose();
            inner.Write(value);
        }

        public override void Write(string? value)
        {
            busy.Dispose();
            inner.Write(value);
        }

        public override void WriteLine(string? value)
        {
            busy.Dispose();
            inner.WriteLine(value);
        }
    }
}
