using System.Collections;

namespace KvmTyped.Types;

/// <summary>The entries of a circular kernel list (<c>struct list_head</c>): each node's container, found as
/// container_of(node, T, member). The head itself is not an entry. Iteration stops with a
/// <see cref="KvmException"/> after <see cref="MaxEntries"/> entries, so a corrupt (cyclic) list cannot hang.</summary>
/// <typeparam name="T">The type whose member links the list.</typeparam>
public readonly struct KListEntries<T> : IEnumerable<T>
    where T : struct, IKernelView<T>
{
    /// <summary>The most entries a list may have before it is taken as corrupt.</summary>
    public const int MaxEntries = 1 << 22;

    private readonly IKernelMemory _memory;
    private readonly ulong _head;
    private readonly ulong _memberOffset;
    private readonly bool _lp64;

    /// <summary>The list whose head is at <paramref name="head"/>; entries embed their list_head
    /// <paramref name="memberOffset"/> bytes from their start. list_head.next is the first pointer of the node.</summary>
    public KListEntries(IKernelMemory memory, ulong head, ulong memberOffset)
    {
        ArgumentNullException.ThrowIfNull(memory);
        _memory = memory;
        _head = head;
        _memberOffset = memberOffset;
        _lp64 = memory.DataModel == DataModel.LP64;
    }

    /// <summary>Walks the list.</summary>
    public Enumerator GetEnumerator() => new(_memory, _head, _memberOffset, _lp64);

    IEnumerator<T> IEnumerable<T>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Walks a list node by node.</summary>
    public struct Enumerator : IEnumerator<T>
    {
        private readonly IKernelMemory _memory;
        private readonly ulong _head;
        private readonly ulong _memberOffset;
        private readonly bool _lp64;
        private ulong _node;
        private int _count;

        internal Enumerator(IKernelMemory memory, ulong head, ulong memberOffset, bool lp64)
        {
            _memory = memory;
            _head = head;
            _memberOffset = memberOffset;
            _lp64 = lp64;
            _node = head;
            _count = 0;
        }

        /// <summary>The entry containing the current node.</summary>
        public readonly T Current => T.At(_memory, _node - _memberOffset);

        readonly object IEnumerator.Current => Current;

        /// <summary>Follows next.</summary>
        public bool MoveNext()
        {
            var next = KernelReader.ReadPointer(_memory, _node, _lp64);
            if (next == 0) throw new KvmReadException(_node, $"list node at 0x{_node:x} has a NULL next pointer (list head 0x{_head:x})");
            if (next == _head) return false;
            if (++_count > MaxEntries) throw new KvmException($"list at 0x{_head:x} did not return to its head after {MaxEntries} entries");
            _node = next;
            return true;
        }

        /// <summary>Starts again at the head.</summary>
        public void Reset()
        {
            _node = _head;
            _count = 0;
        }

        /// <summary>Nothing to release.</summary>
        public readonly void Dispose()
        {
        }
    }
}

/// <summary>The entries of a NULL-terminated kernel hash list (<c>struct hlist_head</c> / <c>hlist_node</c>):
/// each node's container. Bounded like <see cref="KListEntries{T}"/>.</summary>
/// <typeparam name="T">The type whose hlist_node member links the list.</typeparam>
public readonly struct KHListEntries<T> : IEnumerable<T>
    where T : struct, IKernelView<T>
{
    private readonly IKernelMemory _memory;
    private readonly ulong _first;
    private readonly ulong _memberOffset;

    /// <summary>The list whose first node is <paramref name="first"/> (0 = empty); entries embed their
    /// hlist_node <paramref name="memberOffset"/> bytes from their start; hlist_node.next is its first pointer.</summary>
    public KHListEntries(IKernelMemory memory, ulong first, ulong memberOffset)
    {
        ArgumentNullException.ThrowIfNull(memory);
        _memory = memory;
        _first = first;
        _memberOffset = memberOffset;
    }

    /// <summary>The entries, in list order.</summary>
    public IEnumerator<T> GetEnumerator()
    {
        var lp64 = _memory.DataModel == DataModel.LP64;
        var count = 0;
        for (var node = _first; node != 0; node = KernelReader.ReadPointer(_memory, node, lp64))
        {
            if (++count > KListEntries<T>.MaxEntries) throw new KvmException($"hash list from 0x{_first:x} did not end after {KListEntries<T>.MaxEntries} entries");
            yield return T.At(_memory, node - _memberOffset);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
