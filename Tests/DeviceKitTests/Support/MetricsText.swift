/// The value of one sample line of a Prometheus text exposition, e.g.
/// `center_frames_refused_total{category="forged"}`; 0 when the sample is not there (yet).
func metricValue(_ sample: String, in text: String) -> Double {
    for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
        return Double(line.dropFirst(sample.count + 1)) ?? .nan
    }
    return 0
}
