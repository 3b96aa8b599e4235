using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmTyped.Formats.Kdump;

/// <summary>A bounded, thread-safe cache of decoded pages whose pages live in one array, allocated once: a direct-mapped
/// table of slots, each guarded by a sequence number. Nothing is allocated per page, and a slot's memory is reused when
/// another page takes it.</summary>
/// <remarks>
/// <para>A filler takes a slot by making its sequence number odd (compare-and-swap), decodes into it, publishes which
/// page it holds and makes the number even again. A reader reads the number, checks the slot holds its page, copies,
/// and reads the number again: if it moved (or was odd), the copy may mix two pages and is not used — the reader
/// decodes the page itself. A reader never waits, and a filler that finds a slot taken decodes elsewhere.</para>
/// <para>The array is allocated uninitialized: only slots that were filled are ever touched (a page of fresh memory
/// costs a page fault, which is most of what caching a page cost when each page was its own array), and a slot is read
/// only once a page was published in it. On Linux, an arena of 2 MiB or more starts on a 2 MiB boundary and asks for
/// transparent huge pages (<c>madvise(MADV_HUGEPAGE)</c>): one fault then maps 512 slots at once, where filling 1,024
/// slots of fresh memory took 1,024 faults (a third of <c>ps</c> on a 1,000-task dump).</para>
/// </remarks>
internal sealed class PageArena
{
    /// <summary>The most memory the pages may take.</summary>
    public const long MaxBytes = 256L << 20;

    private readonly byte[] _pages;
    private readonly int _base;
    private readonly ulong[] _keys;
    private readonly int[] _sequence;
    private readonly int _mask;
    private readonly int _pageSize;
    private readonly int _pageShift;
    private long _generation;

    /// <param name="pages">Pages kept: rounded up to a power of two, at most <see cref="MaxBytes"/> of them.</param>
    /// <param name="pageSize">Bytes in a page: a power of two (a kdump's block size is checked to be one).</param>
    public PageArena(int pages, int pageSize)
    {
        var size = 1;
        while (size < pages && (long)size * 2 * pageSize <= MaxBytes)
            size <<= 1;
        var bytes = size * pageSize;
        if (bytes >= HugePage && OperatingSystem.IsLinux())
        {
            // Pinned, so the boundary found stays one; the 2 MiB more it spans are never touched.
            _pages = GC.AllocateUninitializedArray<byte>(bytes + HugePage, pinned: true);
            _base = AskHugePages(_pages, bytes);
        }
        else
        {
            _pages = GC.AllocateUninitializedArray<byte>(bytes);
        }
        _keys = new ulong[size];
        _sequence = new int[size];
        _mask = size - 1;
        _pageSize = pageSize;
        _pageShift = System.Numerics.BitOperations.Log2((uint)pageSize);
    }

    /// <summary>The size of a transparent huge page on x64 and on arm64 with 4 KiB pages.</summary>
    private const int HugePage = 2 << 20;

    /// <summary>Where the first 2 MiB boundary is in <paramref name="pages"/> (pinned); asks the kernel to back the
    /// <paramref name="bytes"/> from there with huge pages. Where it cannot be asked (no glibc), the pages are small.</summary>
    private static unsafe int AskHugePages(byte[] pages, int bytes)
    {
        var at = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pages));
        var aligned = (at + HugePage - 1) & ~(nint)(HugePage - 1);
        try
        {
            _ = Madvise(aligned, (nuint)bytes, MadvHugePage);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
        return (int)(aligned - at);
    }

    private const int MadvHugePage = 14;

    [DllImport("libc.so.6", EntryPoint = "madvise")]
    private static extern int Madvise(nint address, nuint length, int advice);

    /// <summary>The address of the first slot's memory (the array is pinned when it is aligned).</summary>
    internal unsafe nint FirstSlotAddress => (nint)Unsafe.AsPointer(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_pages), _base));

    /// <summary>Capacity in pages.</summary>
    public int Capacity => _keys.Length;

    /// <summary>Bumped by every invalidation; a page read from the file before a write must not be published
    /// after it.</summary>
    public long Generation => Volatile.Read(ref _generation);

    /// <summary>Copies <paramref name="destination"/>.Length bytes from <paramref name="offset"/> of the page
    /// <paramref name="pfn"/>; false when it is not cached or was being replaced (the destination may then have been
    /// written, with bytes to be overwritten). The bytes asked for lie in one page: <paramref name="offset"/> plus the
    /// length is at most the page size.</summary>
    public bool TryCopy(ulong pfn, int offset, Span<byte> destination)
    {
        if ((uint)offset > (uint)_pageSize || (uint)destination.Length > (uint)(_pageSize - offset))
            throw new ArgumentOutOfRangeException(nameof(destination), "the bytes asked for pass the page's end");
        // The hot path of every cached read (a few nanoseconds): the slot is masked into the arrays' range and the
        // bytes checked to lie in its page, so the arrays are indexed without further bounds checks.
        var slot = (int)pfn & _mask;
        ref var sequenceOf = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_sequence), slot);
        var sequence = Volatile.Read(ref sequenceOf);
        if ((sequence & 1) != 0 || Volatile.Read(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_keys), slot)) != pfn + 1)
            return false;
        ref var source = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_pages), _base + ((nint)slot << _pageShift) + offset);
        // The copy's reads must complete before the number is read again. x86 and x64 keep loads in order: a word read
        // as volatile (an acquire the compiler does not move later loads above; a plain load in a 64-bit process, aligned
        // or not, where a 32-bit one would use a locked instruction) or a copy by a call (which the compiler does not move
        // loads across) is enough there. Elsewhere (arm64) a load barrier does it, which on x64 would cost a fence: 6 ns
        // of a 7 ns cached read, in the random-read benchmark.
        if (System.Runtime.Intrinsics.X86.X86Base.X64.IsSupported && destination.Length == sizeof(ulong))
        {
            Unsafe.WriteUnaligned(ref MemoryMarshal.GetReference(destination), Volatile.Read(ref Unsafe.As<byte, ulong>(ref source)));
        }
        else
        {
            MemoryMarshal.CreateReadOnlySpan(ref source, destination.Length).CopyTo(destination);
            if (!System.Runtime.Intrinsics.X86.X86Base.IsSupported)
                Volatile.ReadBarrier();
        }
        return Volatile.Read(ref sequenceOf) == sequence;
    }

    /// <summary>Takes the slot of <paramref name="pfn"/> to decode the page into; false when another thread holds it.
    /// Every fill taken ends with <see cref="EndFill"/>.</summary>
    public bool TryBeginFill(ulong pfn, out Fill fill)
    {
        var slot = (int)pfn & _mask;
        var sequence = Volatile.Read(ref _sequence[slot]);
        if ((sequence & 1) != 0 || Interlocked.CompareExchange(ref _sequence[slot], sequence + 1, sequence) != sequence)
        {
            fill = default;
            return false;
        }
        Volatile.Write(ref _keys[slot], 0);
        fill = new Fill(slot, sequence + 1, pfn);
        return true;
    }

    /// <summary>The memory of a slot being filled.</summary>
    public Span<byte> Page(in Fill fill) => _pages.AsSpan(_base + (fill.Slot << _pageShift), _pageSize);

    /// <summary>Releases a slot; the page it now holds is published when <paramref name="decoded"/> and no invalidation
    /// happened since <paramref name="generation"/> (read before the page was read from the file).</summary>
    public void EndFill(in Fill fill, bool decoded, long generation)
    {
        if (decoded && Generation == generation)
            Volatile.Write(ref _keys[fill.Slot], fill.Pfn + 1);
        Volatile.Write(ref _sequence[fill.Slot], fill.Sequence + 1);
    }

    /// <summary>Drops <paramref name="pfn"/> (after a write changed its bytes in the file).</summary>
    public void Invalidate(ulong pfn)
    {
        Interlocked.Increment(ref _generation);
        Drop((int)pfn & _mask, pfn + 1);
    }

    /// <summary>Drops everything.</summary>
    public void Clear()
    {
        Interlocked.Increment(ref _generation);
        // Every slot, even one that holds nothing yet: a fill in progress may have checked the generation before it
        // moved and be about to publish; Drop waits for it to end and empties the slot after it.
        for (var slot = 0; slot < _keys.Length; slot++)
            Drop(slot, 0);
    }

    /// <summary>Empties a slot (if it holds <paramref name="key"/>, or anything when 0), waiting for a fill in progress
    /// to end: that fill saw the generation move and does not publish.</summary>
    private void Drop(int slot, ulong key)
    {
        var spin = new SpinWait();
        while (true)
        {
            var sequence = Volatile.Read(ref _sequence[slot]);
            if ((sequence & 1) == 0 && Interlocked.CompareExchange(ref _sequence[slot], sequence + 1, sequence) == sequence)
            {
                if (key == 0 || Volatile.Read(ref _keys[slot]) == key)
                    Volatile.Write(ref _keys[slot], 0);
                Volatile.Write(ref _sequence[slot], sequence + 2);
                return;
            }
            spin.SpinOnce();
        }
    }

    /// <summary>A slot taken for filling.</summary>
    public readonly record struct Fill(int Slot, int Sequence, ulong Pfn);
}
