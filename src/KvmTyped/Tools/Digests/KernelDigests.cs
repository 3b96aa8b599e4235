using KvmTyped.Btf;

namespace KvmTyped.Tools;

/// <summary>The digest of a kernel's types that the source generator checks a project's structs against (the build
/// writes one per <c>KvmTypedKernel</c> item; see the generator's README): every named struct and union with its size
/// and members, typedefs of anonymous structs, and named enums, as UTF-8 lines.</summary>
public static class KernelDigests
{
    /// <summary>The digest of a kernel file: raw BTF (a copy of /sys/kernel/btf/vmlinux or <c>pahole
    /// --btf_encode_detached</c> output) or an ELF vmlinux with a .BTF section, either of them gzip-compressed.</summary>
    /// <param name="path">The kernel file.</param>
    /// <param name="release">The kernel's release as findings name it; null: taken from the file name.</param>
    /// <param name="machine">The kernel's machine (x86_64, i386, aarch64…); null: from the ELF header or the types.</param>
    /// <exception cref="KvmException">The file cannot be read or holds no valid BTF; the message names it.</exception>
    public static string FromFile(string path, string? release = null, string? machine = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            var contents = KernelFile.Load(path);
            var btf = BtfTypes.Parse(contents.Blob, null, path);
            return KernelDigestWriter.Write(btf, contents.Blob, release ?? KernelFile.ReleaseFromName(path), machine ?? contents.ElfMachine, path, stamp: null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new KvmException($"{path}: cannot read its BTF: {e.Message}", e);
        }
    }
}
