package inspect

import (
	"fmt"
	"os"
	"strings"
)

// Hexdump renders b, whose first byte is at file offset base, like
// `hexdump -C`: 16 bytes a line, absolute offsets, an ASCII column. mark, if
// within the dump, is flagged with a '>' before its line so the eye finds the
// problem offset.
func Hexdump(b []byte, base, mark int64) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 16 {
		line := b[i:min(i+16, len(b))]
		off := base + int64(i)
		flag := ' '
		if mark >= off && mark < off+16 {
			flag = '>'
		}
		fmt.Fprintf(&sb, "%c%08x  ", flag, off)
		for j := 0; j < 16; j++ {
			if j < len(line) {
				fmt.Fprintf(&sb, "%02x ", line[j])
			} else {
				sb.WriteString("   ")
			}
			if j == 7 {
				sb.WriteByte(' ')
			}
		}
		sb.WriteString(" |")
		for _, c := range line {
			if c >= 0x20 && c < 0x7f {
				sb.WriteByte(c)
			} else {
				sb.WriteByte('.')
			}
		}
		sb.WriteString("|\n")
	}
	return sb.String()
}

// HexBytes dumps data[off-ctx, off+ctx), clamped to data and aligned down to
// 16 bytes so lines start at round offsets.
func HexBytes(data []byte, off int64, ctx int) string {
	if off < 0 {
		off = 0
	}
	from := max(off-int64(ctx), 0) &^ 15
	to := min(off+int64(ctx), int64(len(data)))
	if from >= to {
		return ""
	}
	return Hexdump(data[from:to], from, off)
}

// HexAround reads the bytes around off from the file at path (ctx before and
// after) and dumps them; "" when the file cannot be read there (a missing
// segment, an offset past the end).
func HexAround(path string, off int64, ctx int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if off < 0 {
		off = 0
	}
	from := max(off-int64(ctx), 0) &^ 15
	b := make([]byte, off+int64(ctx)-from)
	n, _ := f.ReadAt(b, from)
	if n == 0 {
		return ""
	}
	return Hexdump(b[:n], from, off)
}
