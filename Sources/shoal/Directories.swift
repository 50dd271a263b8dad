import Glibc
import SystemPackage

/// Making directories for the commands.
enum Directories {
    /// Makes `path` and its missing parents (`mkdir -p`), mode 0755.
    static func make(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw Errno(rawValue: errno)
            }
        }
    }
}
