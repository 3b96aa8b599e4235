namespace KvmTyped;

/// <summary>Base type of every error the library raises on purpose (a closed handle, a failed read or write, a damaged
/// file, a failed open): catching it catches them all.</summary>
public class KvmException : Exception
{
    /// <summary>Creates the exception with a message.</summary>
    public KvmException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    public KvmException(string message, Exception? inner) : base(message, inner) { }
}

/// <summary>An open failed: a file is missing or unreadable, a flag is illegal, or the files disagree
/// (data model, release). The message is the one kvm_open would print after the errstr prefix.</summary>
public class KvmOpenException : KvmException
{
    /// <summary>Creates the exception with a message.</summary>
    public KvmOpenException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    public KvmOpenException(string message, Exception? inner) : base(message, inner) { }
}

/// <summary>A file is damaged or hostile: a header, count, offset or size does not fit the file or sane limits.
/// The message names the file, where in it, and what was expected.</summary>
public class KvmFormatException : KvmException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="path">The file that is wrong.</param>
    /// <param name="offset">The byte offset in the file where the problem lies, when known.</param>
    /// <param name="what">What was wrong or expected.</param>
    public KvmFormatException(string path, long? offset, string what)
        : base(offset is long o ? $"{path}: at offset 0x{o:x}: {what}" : $"{path}: {what}")
    {
        Path = path;
        Offset = offset;
    }

    /// <summary>The file that is wrong.</summary>
    public string Path { get; }

    /// <summary>The byte offset in the file where the problem lies, when known.</summary>
    public long? Offset { get; }
}

/// <summary>Memory could not be read: the address is not in the dump, not mapped, excluded from the dump, or backed by
/// a section file that is missing.</summary>
public class KvmReadException : KvmException
{
    /// <summary>Creates the exception.</summary>
    public KvmReadException(ulong address, string message) : base(message) => Address = address;

    /// <summary>The address that failed.</summary>
    public ulong Address { get; }
}

/// <summary>A write through an image opened O_RDWR failed: the image is read-only, or an address is not backed by the
/// corefile (not mapped, excluded from the dump, zero-filled, or swapped out). Nothing was written.</summary>
public class KvmWriteException : KvmException
{
    /// <summary>Creates the exception.</summary>
    public KvmWriteException(ulong address, string message) : base(message) => Address = address;

    /// <summary>The address that failed.</summary>
    public ulong Address { get; }
}

/// <summary>The handle was used after it was closed.</summary>
public sealed class KvmClosedException : KvmException
{
    /// <summary>Creates the exception.</summary>
    public KvmClosedException() : base("the kernel image has been closed") { }
}
