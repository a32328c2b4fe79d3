#!/bin/sh
# A Nagios plugin: exit code from $CODE, status line with perfdata, long output with more perfdata.
echo "DISK WARNING - free space: / 3326 MB (56%) | '/ used'=2643MB;5948;5958;0;5968 time=0.01s;;;"
echo "/ 15272 MB (77% inode=96%)"
echo "/boot 68 MB (69% inode=99%) | /boot=68MB;88;93;0;98"
echo "/home=69357MB;253404;253409;0;253414"
exit "${CODE:-1}"
