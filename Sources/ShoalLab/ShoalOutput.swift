/// What `shoal get` and `shoal seed` print on standard output, as far as a real run reads it
/// (the texts come from the `shoal` executable's SwarmRun and Terminal).
enum ShoalOutput {
    /// Whether `output` holds the line a process prints once it listens (after checking its data).
    static func isListening(_ output: String) -> Bool {
        lines(output).contains { $0.hasPrefix("Listening on port ") }
    }

    /// Whether `output` holds `shoal get`'s completion line ("Complete: all N pieces verified"),
    /// printed once every piece is verified.
    static func isComplete(_ output: String) -> Bool {
        lines(output).contains { $0.hasPrefix("Complete: all ") }
    }

    /// The bytes of the last "Downloaded A, uploaded B" line, which a process prints when it stops;
    /// nil when there is none. Sizes are printed with two decimals ("1.50 MiB"), so they are exact
    /// to a two-hundredth of their unit.
    static func transferTotals(_ output: String) -> (downloaded: Int64, uploaded: Int64)? {
        guard let line = lines(output).last(where: { $0.hasPrefix("Downloaded ") }) else { return nil }
        let parts = line.dropFirst("Downloaded ".count).split(separator: ",").map {
            $0.drop(while: { $0 == " " })
        }
        guard parts.count >= 2, parts[1].hasPrefix("uploaded "), let downloaded = bytes(parts[0]),
            let uploaded = bytes(parts[1].dropFirst("uploaded ".count))
        else { return nil }
        return (downloaded, uploaded)
    }

    /// "1.50 MiB", "0 B", "32.00 KiB" in bytes.
    static func bytes<Text: StringProtocol>(_ text: Text) -> Int64? {
        let words = text.split(separator: " ")
        guard words.count == 2, let value = Double(words[0]), value >= 0 else { return nil }
        let scales: [Substring: Double] = [
            "B": 1, "KiB": 1024, "MiB": 1_048_576, "GiB": 1_073_741_824, "TiB": 1_099_511_627_776,
        ]
        guard let scale = scales[Substring(words[1])] else { return nil }
        return Int64((value * scale).rounded())
    }

    private static func lines(_ output: String) -> [Substring] {
        output.split(separator: "\n")
    }
}
