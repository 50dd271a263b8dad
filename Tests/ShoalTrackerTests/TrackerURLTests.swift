import Testing

@testable import ShoalTracker

@Suite("Tracker URLs")
struct TrackerURLTests {
    @Test func parsesTheThreeSchemes() throws {
        let http = try TrackerURL(parsing: "http://tracker.example.org/announce")
        #expect(http.scheme == .http && http.host == "tracker.example.org" && http.port == 80 && http.pathAndQuery == "/announce")
        let https = try TrackerURL(parsing: "HTTPS://Tracker.Example.org:8443/a/announce.php?passkey=abc#x")
        #expect(https.scheme == .https && https.host == "tracker.example.org" && https.port == 8443)
        #expect(https.pathAndQuery == "/a/announce.php?passkey=abc")
        #expect(https.description == "https://tracker.example.org:8443/a/announce.php?passkey=abc")
        let udp = try TrackerURL(parsing: "udp://[::1]:6969/announce")
        #expect(udp.scheme == .udp && udp.host == "::1" && udp.port == 6969 && udp.hostInURL == "[::1]")
        let bare = try TrackerURL(parsing: "http://127.0.0.1:6969")
        #expect(bare.pathAndQuery == "/")
    }

    @Test(arguments: [
        "", "tracker.example.org/announce", "ftp://x/announce", "udp://x/announce", "http://user@x/announce",
        "http://x:0/announce", "http://x:65536/", "http://x:12a/", "http:///announce", "http://[::1/announce",
        "http://[zz]:80/", "http://a b/announce", "http://x/ann\nounce", "wss://x:1/",
    ])
    func refusesWhatCannotBeAnnouncedTo(text: String) {
        #expect(throws: TrackerError.self) { try TrackerURL(parsing: text) }
    }

    @Test func refusesAnAbsurdLength() {
        #expect(throws: TrackerError.self) {
            try TrackerURL(parsing: "http://x/" + String(repeating: "a", count: TrackerURL.maxLength))
        }
    }

    @Test func derivesTheScrapeURLAsBEP48Says() throws {
        #expect(try TrackerURL(parsing: "http://x/announce").scrapeURL?.description == "http://x/scrape")
        #expect(try TrackerURL(parsing: "http://x/a/announce.php?k=1").scrapeURL?.description == "http://x/a/scrape.php?k=1")
        #expect(try TrackerURL(parsing: "http://x/announce/other").scrapeURL == nil)
        #expect(try TrackerURL(parsing: "http://x/a").scrapeURL == nil)
        let udp = try TrackerURL(parsing: "udp://x:1")
        #expect(udp.scrapeURL == udp)
    }

    @Test func appendsAQueryAfterTheURLsOwn() throws {
        #expect(try TrackerURL(parsing: "http://x/announce").appendingQuery("a=1") == "http://x/announce?a=1")
        #expect(try TrackerURL(parsing: "http://x/announce?k=2").appendingQuery("a=1") == "http://x/announce?k=2&a=1")
        #expect(try TrackerURL(parsing: "http://x/announce?").appendingQuery("a=1") == "http://x/announce?a=1")
    }
}
