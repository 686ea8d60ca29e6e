#!/bin/sh
# Word-count reducer in the Hadoop Streaming contract: "word<TAB>count" lines sorted
# by word on stdin; one "word<TAB>total" line per word on stdout. It relies on the
# order, as a streaming reducer does, instead of holding every word in memory.
LC_ALL=C awk -F '\t' '
  $1 != word { if (NR > 1) print word "\t" total; word = $1; total = 0 }
  { total += $2 }
  END { if (NR > 0) print word "\t" total }
'
