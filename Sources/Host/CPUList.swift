/// A kernel CPU list ("0-3,8,10-11", as in /sys/devices/system/cpu/online); nil when malformed.
public func parseCPUList(_ text: String) -> [Int]? {
    var out: [Int] = []
    for item in text.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == " " }) {
        let ends = item.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        switch ends.count {
        case 1: guard let a = ends[0] else { return nil }; out.append(a)
        case 2: guard let a = ends[0], let b = ends[1], a <= b else { return nil }; out += Array(a...b)
        default: return nil
        }
    }
    return out
}
