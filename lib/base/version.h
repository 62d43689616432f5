/* version.h - the toolkit's version, recorded in every output it writes. */
#ifndef WENO_VERSION_H
#define WENO_VERSION_H
#ifndef WENO_VERSION
#define WENO_VERSION "0.1.0"
#endif
#endif
