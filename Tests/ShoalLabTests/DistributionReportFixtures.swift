import Foundation
import ShoalLab

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reports and readers shared by the report tests.
enum DistributionReportFixtures {
    /// The lecture's parameters with F = 8 MiB: F/u is one hour, u_s = d_min = 10u.
    static let lectureBounds = DistributionBounds.lecture(fileSize: 8 * 1024 * 1024)

    /// The sizes the lab measures by default.
    static let sizes = [1, 2, 5, 10, 20, 30]

    /// Client-server 1% above d_cs, P2P 3–10% above d_P2P in three runs, real P2P for two sizes only.
    static func realistic(bounds: DistributionBounds = lectureBounds, sizes: [Int] = sizes, notes: [String] = [])
        -> DistributionReport
    {
        let measurements = sizes.enumerated().map { index, n in
            let cs = bounds.clientServer(peers: n)
            let p2p = bounds.peerToPeer(peers: n)
            let spread = Double(index % 3) * 0.01
            return DistributionMeasurement(
                peers: n, clientServerBound: cs, peerToPeerBound: p2p,
                clientServer: [cs * 1.01, cs * 1.01, cs * 1.01],
                peerToPeer: [p2p * (1.03 + spread), p2p * (1.06 + spread), p2p * (1.08 + spread)],
                realPeerToPeer: n <= 5 ? [p2p * 1.12] : [])
        }
        return DistributionReport(
            measurements: measurements, bounds: bounds, runsPerSize: 3,
            notes: notes.isEmpty ? ["run time 12.5 s", "peak memory 310 KiB per simulated peer"] : notes)
    }

    /// Every kind measured exactly at its bound, one run each.
    static func onTheBounds(sizes: [Int]) -> DistributionReport {
        let bounds = lectureBounds
        let measurements = sizes.map { n in
            DistributionMeasurement(
                peers: n, clientServerBound: bounds.clientServer(peers: n), peerToPeerBound: bounds.peerToPeer(peers: n),
                clientServer: [bounds.clientServer(peers: n)], peerToPeer: [bounds.peerToPeer(peers: n)],
                realPeerToPeer: [bounds.peerToPeer(peers: n)])
        }
        return DistributionReport(measurements: measurements, bounds: bounds, runsPerSize: 1)
    }

    /// Records of RFC 4180 text: quoted fields may hold commas, doubled quotes and line breaks.
    static func parseCSV(_ text: String) -> [[String]] {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var quoted = false
        var characters = Array(text)[...]
        while let character = characters.popFirst() {
            if quoted {
                if character == "\"" {
                    if characters.first == "\"" {
                        field.append("\"")
                        characters.removeFirst()
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(character)
                }
                continue
            }
            switch character {
            case "\"": quoted = true
            case ",":
                record.append(field)
                field = ""
            case "\r\n", "\n":
                record.append(field)
                records.append(record)
                record = []
                field = ""
            default: field.append(character)
            }
        }
        if !field.isEmpty || !record.isEmpty { records.append(record + [field]) }
        return records
    }
}

/// An SVG document as XMLParser reads it: whether it is well-formed, its elements with their attributes,
/// and the text of its `text` elements.
final class SVGReading: NSObject, XMLParserDelegate {
    struct Element {
        var name: String
        var attributes: [String: String]
    }

    private(set) var elements: [Element] = []
    private(set) var texts: [String] = []
    private(set) var wellFormed = false
    private(set) var problem: String?
    private var currentText: String?

    init(_ svg: String) {
        super.init()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = self
        // XMLParser on Linux can report success after an error: ask for both.
        let parsed = parser.parse()
        wellFormed = parsed && parser.parserError == nil && problem == nil
        if let error = parser.parserError { problem = "\(error)" }
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        elements.append(Element(name: elementName, attributes: attributes))
        if elementName == "text" { currentText = "" }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        currentText? += string
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        if elementName == "text", let text = currentText {
            texts.append(text)
            currentText = nil
        }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
        problem = "\(parseError)"
    }

    /// The vertices of the `polyline` elements, in document order.
    var polylines: [[(x: Double, y: Double)]] {
        elements.filter { $0.name == "polyline" }.map { element in
            (element.attributes["points"] ?? "").split(separator: " ").compactMap { pair in
                let parts = pair.split(separator: ",").compactMap { Double($0) }
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            }
        }
    }

    /// The centres of the markers (circles, squares, triangles) in document order, by shape.
    func markerCentres(_ name: String) -> [(x: Double, y: Double)] {
        elements.filter { $0.name == name && $0.attributes["class"] == "marker" }.compactMap { element in
            let number = { (key: String) in element.attributes[key].flatMap(Double.init) }
            switch name {
            case "circle":
                guard let x = number("cx"), let y = number("cy") else { return nil }
                return (x, y)
            case "rect":
                guard let x = number("x"), let y = number("y"), let w = number("width"), let h = number("height")
                else { return nil }
                return (x + w / 2, y + h / 2)
            default:
                let corners = (element.attributes["points"] ?? "").split(separator: " ").map {
                    $0.split(separator: ",").compactMap { Double($0) }
                }
                guard !corners.isEmpty, corners.allSatisfy({ $0.count == 2 }) else { return nil }
                let count = Double(corners.count)
                return (corners.map { $0[0] }.reduce(0, +) / count, corners.map { $0[1] }.reduce(0, +) / count)
            }
        }
    }
}
