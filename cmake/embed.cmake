# Writes a file's bytes as a C array: cmake -DIN=f -DOUT=f.c -DNAME=n -P embed.cmake
# defines `const char NAME[]` (NUL-terminated) and `const size_t NAME_len`.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}" "/* generated from ${IN} by cmake/embed.cmake */\n"
  "#include <stddef.h>\n"
  "const char ${NAME}[] = {\n${bytes}0x00 };\n"
  "const size_t ${NAME}_len = sizeof(${NAME}) - 1;\n")
