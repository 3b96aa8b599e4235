using System.Runtime.InteropServices;

namespace KvmTyped.Formats.Compression;

/// <summary>Decodes zlib pages with one inflate stream per thread, reset between pages, through the native zlib that
/// .NET itself ships (the library behind <see cref="System.IO.Compression.ZLibStream"/>). A dump holds one zlib stream
/// per page: a <see cref="System.IO.Compression.ZLibStream"/> a page allocates and initialises a decoder, and copies
/// every page into a 32 KiB history window, which costs about as much as the inflating itself; a reset stream, asked
/// to finish in one call, does neither.</summary>
/// <remarks>Where that library or its entry points cannot be found (a host that links .NET's native code differently),
/// <see cref="TryDecode"/> says so once and the caller keeps to <see cref="System.IO.Compression.ZLibStream"/>.
/// A NativeAOT program reaches the library when it lists it for direct calls
/// (<c>&lt;DirectPInvoke Include="libSystem.IO.Compression.Native" /&gt;</c>, as the kvmtyped tool does).</remarks>
internal static unsafe class ZlibPageDecoder
{
    private const string Library = "libSystem.IO.Compression.Native";

    // zlib's codes, as .NET's shim passes them through.
    private const int ZOk = 0, ZStreamEnd = 1, ZBufError = -5, ZFinish = 4;

    /// <summary>A zlib window of 2^15 bytes with the zlib header and checksum (RFC 1950), as compress2 writes.</summary>
    private const int WindowBits = 15;

    /// <summary>The shim's stream: its fields are copied to and from zlib's own z_stream at every call.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct ShimStream
    {
        public byte* NextIn;
        public byte* NextOut;
        public byte* Message;
        public nint InternalState;
        public uint AvailIn;
        public uint AvailOut;
    }

    [DllImport(Library, EntryPoint = "CompressionNative_InflateInit2_")]
    private static extern int InflateInit2(ShimStream* stream, int windowBits);

    [DllImport(Library, EntryPoint = "CompressionNative_InflateReset2_")]
    private static extern int InflateReset2(ShimStream* stream, int windowBits);

    [DllImport(Library, EntryPoint = "CompressionNative_Inflate")]
    private static extern int Inflate(ShimStream* stream, int flush);

    [DllImport(Library, EntryPoint = "CompressionNative_InflateEnd")]
    private static extern int InflateEnd(ShimStream* stream);

    /// <summary>Set once the native library or an entry point was missing: every later page takes the managed path.</summary>
    private static volatile bool s_unavailable;

    [ThreadStatic]
    private static Stream? t_stream;

    /// <summary>A thread's inflate stream in native memory, ended and freed when the thread's last reference goes.</summary>
    private sealed class Stream
    {
        public readonly ShimStream* Native;

        public Stream(ShimStream* native) => Native = native;

        ~Stream()
        {
            try
            {
                InflateEnd(Native);
            }
            catch (EntryPointNotFoundException)
            {
                // A library without it never gets here in practice (InflateInit2 and Inflate bound before); zlib's
                // state is then left to the process's end rather than ending the process from a finalizer.
                return;
            }
            NativeMemory.Free(Native);
        }
    }

    /// <summary>Decodes one zlib stream into all of <paramref name="page"/>.</summary>
    /// <returns>Null when the native decoder is not available (use the managed one); otherwise whether the page
    /// decoded, with <paramref name="error"/> set when it did not.</returns>
    public static bool? TryDecode(ReadOnlySpan<byte> source, Span<byte> page, out string? error)
    {
        error = null;
        if (s_unavailable)
            return null;
        try
        {
            return Decode(source, page, out error);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // An entry point is bound at its first call: any of them may be the one missing.
            s_unavailable = true;
            error = null;
            return null;
        }
    }

    private static bool? Decode(ReadOnlySpan<byte> source, Span<byte> page, out string? error)
    {
        error = null;
        var stream = t_stream ??= Create();
        if (stream is null)
            return null;
        var z = stream.Native;
        if (InflateReset2(z, WindowBits) != ZOk)   // a fresh stream too: it is the same as a new one
        {
            error = "zlib stream could not be reset";
            return false;
        }
        fixed (byte* input = source)
        fixed (byte* output = page)
        {
            z->NextIn = input;
            z->AvailIn = (uint)source.Length;
            z->NextOut = output;
            z->AvailOut = (uint)page.Length;
            var rc = Inflate(z, ZFinish);
            var written = page.Length - (int)z->AvailOut;
            var unread = z->AvailIn;
            z->NextIn = z->NextOut = null;
            switch (rc)
            {
                case ZStreamEnd when written == page.Length:
                    return true;
                case ZStreamEnd:
                    error = $"zlib data decodes to {written} bytes, not {page.Length}";
                    return false;
                case ZOk or ZBufError when written == page.Length && unread == 0:
                    error = $"zlib data ends after {page.Length} bytes without the end of its stream (truncated before its checksum)";
                    return false;
                case ZOk or ZBufError when written == page.Length:
                    error = $"zlib data decodes to more than {page.Length} bytes";
                    return false;
                case ZOk or ZBufError:
                    error = $"zlib data decodes to {written} bytes, not {page.Length}";
                    return false;
                default:
                    var why = z->Message is null ? $"error {rc}" : Marshal.PtrToStringUTF8((nint)z->Message);
                    error = $"Zlib data damaged: {why}";
                    return false;
            }
        }
    }

    private static Stream? Create()
    {
        var native = (ShimStream*)NativeMemory.AllocZeroed((nuint)sizeof(ShimStream));
        int rc;
        try
        {
            rc = InflateInit2(native, WindowBits);
        }
        catch
        {
            NativeMemory.Free(native);
            throw;
        }
        if (rc != ZOk || native->InternalState == 0)
        {
            NativeMemory.Free(native);
            return null;
        }
        return new Stream(native);
    }
}
