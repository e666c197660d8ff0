// Compiled by MSBuild's RoslynCodeTaskFactory (see LibTorchSharpGlibcxx.targets); not part of any project. Also shipped in
// the Ddvi package's buildTransitive folder, compiled the same way on the consumer's build.
using System;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

/// <summary>
/// Sets VER_FLG_WEAK on the ELF version need for <see cref="VersionName"/> in every libLibTorchSharp.so
/// found under <see cref="Directories"/>: when the system libstdc++ does not define that version, or always when
/// <see cref="OnlyIfSystemLacksVersion"/> is false (output meant for other machines; the flag is harmless where the
/// version exists).
/// </summary>
public class MarkGlibcxxVersionNeedWeak : Task
{
    [Required] public string[] Directories { get; set; }
    [Required] public string VersionName { get; set; }
    public bool OnlyIfSystemLacksVersion { get; set; } = true;

    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlagWeak = 0x2;

    static readonly string[] LibStdCxxCandidates =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/lib64/libstdc++.so.6",
    };

    public override bool Execute()
    {
        string libstdcxx = LibStdCxxCandidates.FirstOrDefault(File.Exists);
        if (OnlyIfSystemLacksVersion && libstdcxx != null && ContainsAscii(File.ReadAllBytes(libstdcxx), VersionName + "\0"))
        {
            Log.LogMessage(MessageImportance.Low, $"{libstdcxx} defines {VersionName}; libLibTorchSharp.so left as shipped.");
            return true;
        }
        foreach (string dir in Directories.Where(Directory.Exists))
        {
            foreach (string file in Directory.EnumerateFiles(dir, "libLibTorchSharp.so", SearchOption.AllDirectories))
            {
                try
                {
                    string outcome = MarkWeak(file);
                    Log.LogMessage(MessageImportance.Low, $"{file}: {outcome}");
                }
                catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException)
                {
                    Log.LogError($"Could not mark {VersionName} weak in {file}: {e.Message}");
                    return false;
                }
            }
        }
        return true;
    }

    string MarkWeak(string path)
    {
        byte[] elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("expected a little-endian 64-bit ELF file");

        long sectionTable = (long)BitConverter.ToUInt64(elf, 0x28);
        int sectionSize = BitConverter.ToUInt16(elf, 0x3A);
        int sectionCount = BitConverter.ToUInt16(elf, 0x3C);
        for (int s = 0; s < sectionCount; s++)
        {
            long header = sectionTable + (long)s * sectionSize;
            if (BitConverter.ToUInt32(elf, (int)header + 4) != ShtGnuVerneed) continue;

            long needOffset = (long)BitConverter.ToUInt64(elf, (int)header + 0x18);
            int stringSection = (int)BitConverter.ToUInt32(elf, (int)header + 0x28);
            int needCount = (int)BitConverter.ToUInt32(elf, (int)header + 0x2C);
            long strings = (long)BitConverter.ToUInt64(elf, (int)(sectionTable + (long)stringSection * sectionSize + 0x18));

            long need = needOffset;
            for (int n = 0; n < needCount; n++)
            {
                int auxCount = BitConverter.ToUInt16(elf, (int)need + 2);
                long aux = need + BitConverter.ToUInt32(elf, (int)need + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    string name = ReadCString(elf, strings + BitConverter.ToUInt32(elf, (int)aux + 8));
                    if (name == VersionName)
                    {
                        ushort flags = BitConverter.ToUInt16(elf, (int)aux + 4);
                        if ((flags & VerFlagWeak) != 0) return $"{VersionName} already weak";
                        BitConverter.GetBytes((ushort)(flags | VerFlagWeak)).CopyTo(elf, (int)aux + 4);
                        // Write beside, then rename: a reader never sees a half-written library.
                        string temporary = path + ".patching";
                        File.WriteAllBytes(temporary, elf);
                        File.Replace(temporary, path, null);
                        return $"marked {VersionName} weak";
                    }
                    aux += BitConverter.ToUInt32(elf, (int)aux + 12);
                }
                need += BitConverter.ToUInt32(elf, (int)need + 12);
            }
        }
        return $"no version need for {VersionName}";
    }

    static string ReadCString(byte[] bytes, long offset)
    {
        int end = (int)offset;
        while (end < bytes.Length && bytes[end] != 0) end++;
        return Encoding.ASCII.GetString(bytes, (int)offset, end - (int)offset);
    }

    static bool ContainsAscii(byte[] haystack, string needle)
    {
        byte[] pattern = Encoding.ASCII.GetBytes(needle);
        for (int i = 0; i <= haystack.Length - pattern.Length; i++)
        {
            int j = 0;
            while (j < pattern.Length && haystack[i + j] == pattern[j]) j++;
            if (j == pattern.Length) return true;
        }
        return false;
    }
}
