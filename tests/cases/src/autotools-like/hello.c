#include <stdio.h>

int main(void)
{
    puts("hello from the conformance tests");
    return 0;
}
