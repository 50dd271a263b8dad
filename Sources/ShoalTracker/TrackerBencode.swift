import ShoalBencode

/// Writes the tracker's bencoded answers directly, keys in canonical (sorted) order, without building
/// a `BencodeValue` tree: the server writes one per HTTP request.
public enum TrackerBencode {
    /// An announce answer (BEP 3, compact peers of BEP 23 and BEP 7). Keys in byte order: complete,
    /// downloaded, incomplete, interval, min interval, peers, peers6, tracker id, warning message.
    public static func writeAnnounce(
        seeders: Int64?, downloaded: Int64?, leechers: Int64?, interval: Int64?, minInterval: Int64?,
        peers: ArraySlice<UInt8>, peers6: ArraySlice<UInt8>?, trackerID: [UInt8]?, warning: [UInt8]?,
        into output: inout [UInt8]
    ) {
        output.append(UInt8(ascii: "d"))
        if let seeders { writeInteger("complete", seeders, into: &output) }
        if let downloaded { writeInteger("downloaded", downloaded, into: &output) }
        if let leechers { writeInteger("incomplete", leechers, into: &output) }
        if let interval { writeInteger("interval", interval, into: &output) }
        if let minInterval { writeInteger("min interval", minInterval, into: &output) }
        writeKey("peers", into: &output)
        BencodeEncoder.appendString(peers, to: &output)
        if let peers6 {
            writeKey("peers6", into: &output)
            BencodeEncoder.appendString(peers6, to: &output)
        }
        if let trackerID {
            writeKey("tracker id", into: &output)
            BencodeEncoder.appendString(trackerID, to: &output)
        }
        if let warning {
            writeKey("warning message", into: &output)
            BencodeEncoder.appendString(warning, to: &output)
        }
        output.append(UInt8(ascii: "e"))
    }

    /// A refusal (BEP 3 `failure reason`).
    public static func writeFailure(_ reason: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "d"))
        writeKey("failure reason", into: &output)
        BencodeEncoder.appendString(Array(reason.utf8), to: &output)
        output.append(UInt8(ascii: "e"))
    }

    /// A scrape answer (BEP 48); `files` must be sorted by info-hash and hold each once.
    public static func writeScrape(
        _ files: [(Bytes20, ScrapeCounts)], minRequestInterval: Int64?, into output: inout [UInt8]
    ) {
        output.append(UInt8(ascii: "d"))
        writeKey("files", into: &output)
        output.append(UInt8(ascii: "d"))
        for (hash, counts) in files {
            output.append(contentsOf: "20:".utf8)
            hash.append(to: &output)
            output.append(UInt8(ascii: "d"))
            writeInteger("complete", counts.seeders, into: &output)
            writeInteger("downloaded", counts.completed, into: &output)
            writeInteger("incomplete", counts.leechers, into: &output)
            output.append(UInt8(ascii: "e"))
        }
        output.append(UInt8(ascii: "e"))
        if let minRequestInterval {
            writeKey("flags", into: &output)
            output.append(UInt8(ascii: "d"))
            writeInteger("min_request_interval", minRequestInterval, into: &output)
            output.append(UInt8(ascii: "e"))
        }
        output.append(UInt8(ascii: "e"))
    }

    @inline(__always)
    static func writeKey(_ key: StaticString, into output: inout [UInt8]) {
        output.appendDecimal(Int64(key.utf8CodeUnitCount))
        output.append(UInt8(ascii: ":"))
        key.withUTF8Buffer { output.append(contentsOf: $0) }
    }

    @inline(__always)
    static func writeInteger(_ key: StaticString, _ value: Int64, into output: inout [UInt8]) {
        writeKey(key, into: &output)
        output.append(UInt8(ascii: "i"))
        output.appendDecimal(value)
        output.append(UInt8(ascii: "e"))
    }
}
