using System.Buffers.Binary;
using KvmTyped.Formats.Kdump;

namespace KvmTyped.Tests.Formats.Kdump;

public class SparseKdumpTests
{
    [Fact]
    public void A_sparse_file_claiming_terabytes_of_bitmap_is_refused_at_once()
    {
        var bytes = SyntheticKdumpTests.Standard().Build();
        var path = Path.Combine(Path.GetTempPath(), "kvmtyped-sparse-" + Guid.NewGuid().ToString("N") + ".kdump");
        try
        {
            using (var f = File.Create(path))
            {
                f.Write(bytes);
                // bitmap_blocks (64-bit layout, offset 436): 2^30 blocks of 4 KiB (4 TiB), inside a sparse 8 TiB file.
                f.SetLength(8L << 40);
                f.Position = 436;
                Span<byte> v = stackalloc byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(v, 1 << 30);
                f.Write(v);
            }
            var e = Assert.Throws<KvmFormatException>(() => KdumpFile.Open(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("bitmaps", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
