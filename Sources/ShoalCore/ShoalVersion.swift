/// Shoal's version, as it appears in `created by` and (later) in the BEP 20 peer id.
public enum ShoalVersion {
    public static let string = "0.1.0"
    /// `created by` of the torrents Shoal makes.
    public static let createdBy = "Shoal \(string)"
}
