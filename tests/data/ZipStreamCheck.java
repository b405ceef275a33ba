// Test fixture for tests/zips.rs: reads a zip from standard input, front to back, the way a
// streaming reader does (java.util.zip.ZipInputStream: local headers only, no central
// directory), and prints one line per entry: name, bytes read, size in the header, SHA-256.
// ZipInputStream checks each entry's CRC-32 itself and refuses stored entries that rely on a
// data descriptor. Run with `java ZipStreamCheck.java < file.zip` (JDK 11 or later).
import java.io.BufferedInputStream;
import java.security.MessageDigest;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

public class ZipStreamCheck {
    public static void main(String[] args) throws Exception {
        try (ZipInputStream z = new ZipInputStream(new BufferedInputStream(System.in))) {
            byte[] buf = new byte[1 << 16];
            ZipEntry e;
            while ((e = z.getNextEntry()) != null) {
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                long n = 0;
                int k;
                while ((k = z.read(buf)) > 0) {
                    md.update(buf, 0, k);
                    n += k;
                }
                StringBuilder hex = new StringBuilder();
                for (byte b : md.digest()) {
                    hex.append(String.format("%02x", b));
                }
                System.out.println(e.getName() + "\t" + n + "\t" + e.getSize() + "\t" + hex);
            }
        }
    }
}
