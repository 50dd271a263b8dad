import Foundation

/// Comma-separated values as RFC 4180 writes them: a field holding a comma, a double quote, a line break or
/// leading or trailing spaces is quoted, with its double quotes doubled; lines end with CRLF.
enum CSVText {
    /// One field, quoted when it has to be.
    static func field(_ text: String) -> String {
        // By scalar, not by Character: "\r\n" is one Character, equal to neither "\r" nor "\n".
        let needsQuotes = text.unicodeScalars.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }
            || text.first == " " || text.last == " "
        guard needsQuotes else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// One record: its fields, quoted where needed, joined by commas, with the closing CRLF.
    static func record(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\r\n"
    }
}
