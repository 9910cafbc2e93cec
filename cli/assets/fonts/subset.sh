#!/usr/bin/env bash
# Rebuild NotoSansSC-Regular-GB2312.otf from Debian's fonts-noto-cjk (see README.md).
# Needs: apt-get download fonts-noto-cjk, python3 with fontTools.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download fonts-noto-cjk >/dev/null
dpkg-deb -x fonts-noto-cjk_*.deb x
python3 - <<'PY' > unicodes.txt
chars = set(range(0x20, 0x7F))
for hi in range(0xA1, 0xF8):
    for lo in range(0xA1, 0xFF):
        try:
            chars.add(ord(bytes([hi, lo]).decode("gb2312")))
        except UnicodeDecodeError:
            pass
chars.update(range(0xFF01, 0xFF5F))
chars.update(range(0x3000, 0x3020))
chars.update([0xB7, 0x2014, 0x2026, 0xD7])
print("\n".join("U+%04X" % c for c in sorted(chars)))
PY
# Face 2 of the collection is Noto Sans CJK SC.
pyftsubset x/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc --font-number=2 \
  --unicodes-file=unicodes.txt --layout-features='kern,vert,vrt2' --no-hinting \
  --name-IDs='*' --name-languages='*' --output-file="$here/NotoSansSC-Regular-GB2312.otf"
