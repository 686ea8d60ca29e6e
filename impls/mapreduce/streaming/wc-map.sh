#!/bin/sh
# Word-count mapper in the Hadoop Streaming contract: text on stdin, one
# "word<TAB>1" line per ASCII word on stdout.
LC_ALL=C tr -cs 'A-Za-z' '\n' | LC_ALL=C tr 'A-Z' 'a-z' | sed -n 's/^\(..*\)$/\1\t1/p'
