/// Extended file attributes of BEP 47, written as the characters of an `attr` string.
public struct FileAttributes: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `p`: a padding file, whose bytes are zeros and are never written to disk.
    public static let padding = FileAttributes(rawValue: 1 << 0)
    /// `x`: executable.
    public static let executable = FileAttributes(rawValue: 1 << 1)
    /// `h`: hidden.
    public static let hidden = FileAttributes(rawValue: 1 << 2)
    /// `l`: a symbolic link, whose target is the file's `symlink path`.
    public static let symlink = FileAttributes(rawValue: 1 << 3)

    private static let letters: [(FileAttributes, Character)] = [
        (.padding, "p"), (.executable, "x"), (.hidden, "h"), (.symlink, "l"),
    ]

    /// Reads an `attr` string; unknown characters are ignored, as BEP 47 says.
    public init<Bytes: Sequence<UInt8>>(attr: Bytes) {
        var attributes: FileAttributes = []
        for byte in attr {
            for (flag, letter) in Self.letters where letter.asciiValue == byte {
                attributes.insert(flag)
            }
        }
        self = attributes
    }

    /// The `attr` string (empty when there is no attribute).
    public var attr: String {
        String(Self.letters.filter { contains($0.0) }.map(\.1))
    }

    public var description: String { attr }
}
