package repair

import "encoding/binary"

var le = binary.LittleEndian
